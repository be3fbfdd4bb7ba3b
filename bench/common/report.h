// The rows of a benchmark's table: one helper fills a row and adds it, and the
// rows are printed at the end as a Markdown table or as JSON.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace replog::bench {

// One figure of a benchmark's table.
struct Row {
  std::string fig;      // "1", "5a", ...
  std::string name;
  std::string measured;
  std::string raw;      // the raw reference, as text
  std::string ratio;    // as text
  std::string goal;
  int met = -1;         // -1: no goal, 0: NOT met, 1: met
  // numbers for --json
  double value = 0;
  std::string unit;
  double raw_value = 0;
  std::string raw_unit;
  double ratio_value = 0;
  std::string note;
  // Exact numbers behind the text, for --json readers (bench/run.sh): name -> value.
  std::vector<std::pair<std::string, double>> counts;
};

// Fills one row and adds it to the run's rows (and prints it as progress).
// Every figure reports through it, for example:
//
//   RowBuilder("1", "durable single appends (Node::call set, 1 caller)")
//       .measured(rate, "updates/s", rate_text(rate) + " (...)")
//       .raw(raw_rate, "updates/s", rate_text(raw_rate) + " raw LMDB, 1 commit/update")
//       .percent_of(rate / raw_rate, "raw")
//       .goal(">= 80% of raw", rate / raw_rate >= 0.8)
//       .add();
//
// A part not given stays empty (a row without a raw reference, ratio or goal).
class RowBuilder {
 public:
  RowBuilder(std::string fig, std::string name);

  RowBuilder& measured(double value, std::string unit, std::string text);
  RowBuilder& raw(double value, std::string unit, std::string text);
  RowBuilder& ratio(double value, const char* format);         // shown as fmt(format, value)
  RowBuilder& percent_of(double value, const std::string& of);  // 0.5, "raw" -> "50.0% of raw"
  RowBuilder& goal(std::string text);                           // shown; no verdict
  RowBuilder& goal(std::string text, bool met);
  RowBuilder& note(std::string text);
  RowBuilder& count(std::string name, double value);  // only in --json, as "counts": {name: value}

  void add();

 private:
  Row row_;
};

// The rows in figure order (they are measured in the order the fixtures allow).
void sort_rows();

// The rows as a Markdown table, then (if `notes`) each row's note.
void print_rows_table(bool notes);

// The rows as the JSON array of "figures".
void print_rows_json();

}  // namespace replog::bench
