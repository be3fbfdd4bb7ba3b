#include "common/report.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "common/bench_common.h"

namespace replog::bench {

namespace {

std::vector<Row> g_rows;

}  // namespace

RowBuilder::RowBuilder(std::string fig, std::string name) {
  row_.fig = std::move(fig);
  row_.name = std::move(name);
}

RowBuilder& RowBuilder::measured(double value, std::string unit, std::string text) {
  row_.value = value;
  row_.unit = std::move(unit);
  row_.measured = std::move(text);
  return *this;
}

RowBuilder& RowBuilder::raw(double value, std::string unit, std::string text) {
  row_.raw_value = value;
  row_.raw_unit = std::move(unit);
  row_.raw = std::move(text);
  return *this;
}

RowBuilder& RowBuilder::ratio(double value, const char* format) {
  row_.ratio_value = value;
  row_.ratio = fmt(format, value);
  return *this;
}

RowBuilder& RowBuilder::percent_of(double value, const std::string& of) {
  row_.ratio_value = value;
  row_.ratio = fmt("%.1f%%", 100 * value) + " of " + of;
  return *this;
}

RowBuilder& RowBuilder::goal(std::string text) {
  row_.goal = std::move(text);
  return *this;
}

RowBuilder& RowBuilder::goal(std::string text, bool met) {
  row_.goal = std::move(text);
  row_.met = met ? 1 : 0;
  return *this;
}

RowBuilder& RowBuilder::note(std::string text) {
  row_.note = std::move(text);
  return *this;
}

RowBuilder& RowBuilder::count(std::string name, double value) {
  row_.counts.emplace_back(std::move(name), value);
  return *this;
}

void RowBuilder::add() {
  const Row& r = row_;
  progress("  => " + r.fig + " " + r.name + ": " + r.measured + (r.raw.empty() ? "" : " | raw " + r.raw) +
           (r.ratio.empty() ? "" : " | " + r.ratio) + (r.met < 0 ? "" : (r.met ? " | goal met" : " | goal NOT met")));
  g_rows.push_back(std::move(row_));
}

void sort_rows() {
  std::stable_sort(g_rows.begin(), g_rows.end(), [](const Row& x, const Row& y) { return x.fig < y.fig; });
}

void print_rows_table(bool notes) {
  std::vector<std::string> head = {"#", "figure", "measured", "raw reference", "ratio", "goal", "result"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : g_rows)
    rows.push_back({r.fig, r.name, r.measured, r.raw, r.ratio, r.goal, r.met < 0 ? "-" : (r.met ? "met" : "NOT met")});
  std::vector<size_t> w(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    w[c] = head[c].size();
    for (const auto& row : rows) w[c] = std::max(w[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (size_t c = 0; c < cells.size(); ++c) s += " " + cells[c] + std::string(w[c] - cells[c].size(), ' ') + " |";
    std::cout << s << "\n";
  };
  line(head);
  std::string sep = "|";
  for (size_t c = 0; c < head.size(); ++c) sep += std::string(w[c] + 2, '-') + "|";
  std::cout << sep << "\n";
  for (const auto& row : rows) line(row);
  if (!notes) return;
  bool any = false;
  for (const auto& r : g_rows)
    if (!r.note.empty()) {
      if (!any) std::cout << "\nNotes:\n";
      any = true;
      std::cout << "  " << r.fig << " " << r.name << ": " << r.note << "\n";
    }
}

void print_rows_json() {
  const auto number = [](double v) { return fmt("%.15g", v); };
  std::cout << "[";
  for (size_t i = 0; i < g_rows.size(); ++i) {
    const Row& r = g_rows[i];
    std::cout << (i ? "," : "") << "\n {\"figure\":\"" << json_escape(r.fig) << "\",\"name\":\"" << json_escape(r.name)
              << "\",\"value\":" << number(r.value) << ",\"unit\":\"" << r.unit << "\",\"raw\":" << number(r.raw_value)
              << ",\"raw_unit\":\"" << r.raw_unit << "\",\"raw_reference\":\"" << json_escape(r.raw)
              << "\",\"ratio\":" << number(r.ratio_value) << ",\"measured\":\"" << json_escape(r.measured)
              << "\",\"goal\":\"" << json_escape(r.goal) << "\",\"met\":"
              << (r.met < 0 ? "null" : (r.met ? "true" : "false")) << ",\"note\":\"" << json_escape(r.note)
              << "\",\"counts\":{";
    for (size_t c = 0; c < r.counts.size(); ++c)
      std::cout << (c ? "," : "") << "\"" << json_escape(r.counts[c].first) << "\":" << number(r.counts[c].second);
    std::cout << "}}";
  }
  std::cout << "\n]";
}

}  // namespace replog::bench
