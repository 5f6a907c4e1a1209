// The peer for eccl-perf and expert_move_bench: the same operations through Open MPI, run the way
// MPI users run it (mpirun, its own processes), so both can be measured in one session.
//   mpirun -np 2 --mca btl self,vader mpi_peer -o pingpong -b 8
//   mpirun -np 4 --mca btl self,tcp   mpi_peer -o all_gather -b 1M
//   mpirun -np 4 --mca btl self,vader mpi_peer -o expert_move -b 4M -k 16
// Options: -n iterations per repetition, -r repetitions, -w warm-up operations (default 10), -k
// experts per rank (expert_move). Prints one line: op, ranks, bytes, median time (µs; pingpong: half a round trip) over the
// repetitions, its range, and busbw in GB/s (nccl-tests' formulas, as eccl-perf prints them).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

size_t parseSize(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  const char unit = end && *end ? *end : 0;
  if (unit == 'K' || unit == 'k') v *= 1 << 10;
  if (unit == 'M' || unit == 'm') v *= 1 << 20;
  if (unit == 'G' || unit == 'g') v *= double(1 << 30);
  return static_cast<size_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  std::string op = "pingpong";
  size_t bytes = 8;
  int iters = 100, reps = 5, warmup = 10, experts = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "-o") op = argv[i + 1];
    else if (k == "-b") bytes = parseSize(argv[i + 1]);
    else if (k == "-n") iters = std::atoi(argv[i + 1]);
    else if (k == "-r") reps = std::atoi(argv[i + 1]);
    else if (k == "-w") warmup = std::atoi(argv[i + 1]);
    else if (k == "-k") experts = std::atoi(argv[i + 1]);
    else {
      if (rank == 0) std::fprintf(stderr, "mpi_peer: unknown option %s\n", k.c_str());
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
  }
  const bool expertMove = op == "expert_move";
  if ((op == "pingpong" && n % 2) || (expertMove && n < 4) || (op != "pingpong" && op != "all_gather" && !expertMove)) {
    if (rank == 0) std::fprintf(stderr, "mpi_peer: -o pingpong (even ranks), all_gather, or expert_move (>= 4 ranks)\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  std::vector<char> send(expertMove ? bytes * experts : bytes, 1), recv(expertMove ? bytes * experts : bytes * n);
  std::vector<MPI_Request> reqs;
  auto once = [&] {
    if (op == "pingpong") {
      const int peer = rank ^ 1;
      if (rank % 2 == 0) {
        MPI_Send(send.data(), int(bytes), MPI_BYTE, peer, 0, MPI_COMM_WORLD);
        MPI_Recv(recv.data(), int(bytes), MPI_BYTE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(recv.data(), int(bytes), MPI_BYTE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(send.data(), int(bytes), MPI_BYTE, peer, 0, MPI_COMM_WORLD);
      }
    } else if (op == "all_gather") {
      MPI_Allgather(send.data(), int(bytes), MPI_BYTE, recv.data(), int(bytes), MPI_BYTE, MPI_COMM_WORLD);
    } else {  // expert_move_bench's raw batch: K messages to rank+1+(i mod 3), K from rank-1-(i mod 3)
      reqs.clear();
      for (int i = 0; i < experts; ++i) {
        const int shift = 1 + i % 3;
        reqs.emplace_back();
        MPI_Irecv(recv.data() + i * bytes, int(bytes), MPI_BYTE, (rank + n - shift) % n, i, MPI_COMM_WORLD, &reqs.back());
      }
      for (int i = 0; i < experts; ++i) {
        const int shift = 1 + i % 3;
        reqs.emplace_back();
        MPI_Isend(send.data() + i * bytes, int(bytes), MPI_BYTE, (rank + shift) % n, i, MPI_COMM_WORLD, &reqs.back());
      }
      MPI_Waitall(int(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
    }
  };
  const int perRep = expertMove ? 1 : iters;
  std::vector<double> times;
  for (int i = 0; i < warmup; ++i) once();
  for (int r = 0; r < reps * (expertMove ? iters : 1); ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    for (int i = 0; i < perRep; ++i) once();
    if (expertMove) MPI_Barrier(MPI_COMM_WORLD);
    double us = (MPI_Wtime() - t0) * 1e6 / perRep, slowest = 0;
    if (op == "pingpong") us /= 2;
    MPI_Allreduce(&us, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    times.push_back(slowest);
  }
  if (rank == 0) {
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    const double moved = op == "all_gather" ? double(bytes) * n : expertMove ? double(bytes) * experts : double(bytes);
    const double bus = op == "all_gather" ? double(n - 1) / n : 1.0;
    std::printf("mpi_peer %s ranks %d bytes %zu median_us %.2f range_us %.2f-%.2f busbw_GBs %.3f\n", op.c_str(), n, bytes,
                med, times.front(), times.back(), moved / med / 1e3 * bus);
  }
  MPI_Finalize();
  return 0;
}
