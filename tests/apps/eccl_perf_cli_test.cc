// eccl-perf's bad inputs (F12): each gets one clear line naming the option and a non-zero exit,
// before any rank starts.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/apps/spawn.h"

namespace eccl {
namespace {

TEST(EcclPerfCli, BadSizesFactorsAndSocketCountsAreRefusedByName) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"-b", "-5"}, "--minbytes '-5' is not a size"},
      {{"-b", "abc"}, "--minbytes 'abc' is not a size"},
      {{"-e", "100G"}, "--maxbytes '100G' is larger than"},
      {{"-b", "64", "-e", "8"}, "--minbytes 64 is larger than --maxbytes 8"},
      {{"-f", "nan"}, "stepfactor"},
      {{"--nsocks", "0"}, "nsocks"},
      {{"--transport", "pigeon"}, "transport"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{ECCL_PERF_BIN};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const std::string log = testing::scratchPath("perf-cli");
    RankExit e = reapChild(testing::spawnProgram(args, log), std::chrono::seconds(60));
    const std::string out = testing::readFile(log);
    ::unlink(log.c_str());
    EXPECT_NE(e.exitCode, 0) << c.args[0] << " " << c.args[1];
    EXPECT_NE(out.find(c.says), std::string::npos) << out;
    EXPECT_EQ(out.find("stoull"), std::string::npos) << out;
    EXPECT_EQ(out.find("bad_alloc"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace eccl
