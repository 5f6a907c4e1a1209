#include "apps/eccl-eplb/html_report.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "eplb/cost_model.h"
#include "eplb/plan_summary.h"

namespace eccl::eplbtool {
namespace {

// Load relative to the layer mean: 1.0 is white-ish green, above 1 goes to red, below to blue.
std::string colour(double ratio) {
  double t = std::clamp((ratio - 1.0) / 0.5, -1.0, 1.0);
  int r, g, b;
  if (t >= 0) {
    r = 240;
    g = static_cast<int>(240 - 190 * t);
    b = static_cast<int>(200 - 170 * t);
  } else {
    r = static_cast<int>(240 + 200 * t);
    g = static_cast<int>(240 + 60 * t);
    b = 240;
  }
  char buf[16];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", std::clamp(r, 0, 255), std::clamp(g, 0, 255), std::clamp(b, 0, 255));
  return buf;
}

void heatMap(std::ostringstream& o, const std::string& title, const eplb::Placement& p, const eplb::ExpertLoads& loads) {
  const int cell = std::max(6, std::min(22, 900 / std::max(1, p.ranks)));
  const int rowH = std::max(6, std::min(18, 600 / std::max<int>(1, p.layers.size())));
  const int left = 70, top = 30;
  const int width = left + cell * p.ranks + 90, height = top + rowH * static_cast<int>(p.layers.size()) + 30;
  o << "<h2>" << title << "</h2>\n<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
    << "' font-family='sans-serif' font-size='11'>\n";
  o << "<text x='" << left << "' y='14'>rank 0</text><text x='" << left + cell * (p.ranks - 1) << "' y='14' text-anchor='end'>rank "
    << p.ranks - 1 << "</text>\n";
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const auto& total = loads.layers[l].total;
    auto rank = eplb::rankLoads(p.layers[l], total);
    double mean = std::accumulate(rank.begin(), rank.end(), 0.0) / p.ranks;
    int y = top + rowH * static_cast<int>(l);
    o << "<text x='" << left - 6 << "' y='" << y + rowH - 2 << "' text-anchor='end'>L" << l << "</text>";
    for (int r = 0; r < p.ranks; ++r) {
      double ratio = mean > 0 ? rank[r] / mean : 1.0;
      o << "<rect x='" << left + cell * r << "' y='" << y << "' width='" << cell - 1 << "' height='" << rowH - 1
        << "' fill='" << colour(ratio) << "'><title>layer " << l << ", rank " << r << ": " << rank[r] << " tokens ("
        << std::round(ratio * 1000) / 1000 << " x mean)</title></rect>";
    }
    char imb[32];
    std::snprintf(imb, sizeof(imb), "%.3f", eplb::imbalance(p.layers[l], total));
    o << "<text x='" << left + cell * p.ranks + 6 << "' y='" << y + rowH - 2 << "'>" << imb << "</text>\n";
  }
  o << "</svg>\n";
}

}  // namespace

std::string htmlReport(const eplb::Placement& after, const eplb::ExpertLoads& loads, const eplb::Placement* before) {
  std::ostringstream o;
  auto sAfter = eplb::summarizePlacement(after, loads);
  o << "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>eccl EPLB report</title>\n"
    << "<style>body{font-family:sans-serif;margin:24px;color:#222} .legend span{display:inline-block;width:60px;"
    << "text-align:center;padding:2px} table{border-collapse:collapse} td,th{padding:2px 10px;text-align:right}</style>\n"
    << "</head><body>\n<h1>Expert load per rank</h1>\n";
  o << "<p>" << after.layers.size() << " layers, " << after.ranks << " ranks x " << after.slots << " slots, "
    << after.experts << " experts. Each cell is one rank's load in one layer relative to the layer's mean "
    << "(an expert's tokens split evenly over its replicas); the number on the right is the layer's imbalance "
    << "(max / mean).</p>\n<p class='legend'>";
  for (double r : {0.5, 0.75, 1.0, 1.25, 1.5})
    o << "<span style='background:" << colour(r) << "'>" << r << "x</span>";
  o << "</p>\n<table><tr><th></th><th>mean imbalance</th><th>worst layer</th><th>gap to lower bound</th></tr>\n";
  auto row = [&](const char* name, const eplb::PlanSummary& s) {
    char buf[256];
    std::snprintf(buf, sizeof(buf), "<tr><td>%s</td><td>%.4f</td><td>%.4f</td><td>%.2f%%</td></tr>\n", name, s.meanImbalance,
                  s.maxImbalance, 100 * s.meanGap);
    o << buf;
  };
  if (before) row("before", eplb::summarizePlacement(*before, loads));
  row(before ? "after" : "placement", sAfter);
  o << "</table>\n";
  if (before) heatMap(o, "Before", *before, loads);
  heatMap(o, before ? "After" : "Placement", after, loads);
  o << "</body></html>\n";
  return o.str();
}

}  // namespace eccl::eplbtool
