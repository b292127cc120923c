// MeZO's eleven tasks (mezo: large_models/tasks.py, templates.py) as text: for one record of the
// Hugging Face dataset, with the fields `datasets` exports as JSON lines (scripts/export_task.py), the
// prompt and candidate strings exactly as MeZO's templates build them. Token ids and sampling:
// data/task_data.h. docs/tasks.md lists the templates and fields.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace zo2 {

enum class TaskId { kSST2, kRTE, kCB, kBoolQ, kWSC, kWIC, kMultiRC, kCopa, kReCoRD, kSQuAD, kDROP };

struct Task {
  TaskId id;
  const char* name;               // MeZO's --task_name
  const char* hf_dataset;         // what MeZO loads: load_dataset("super_glue", "rte") is "super_glue/rte"
  bool generation;                // SQuAD, DROP: greedy generation scored by F1; the others: accuracy
  bool train_as_classification;   // mezo.sh: false (LM loss on the gold option) for Copa, ReCoRD, SQuAD, DROP
  int64_t num_dev;                // mezo.sh's DEV: 100 for CB and Copa, else 500
  const char* metric() const { return generation ? "f1" : "accuracy"; }
};

const std::vector<Task>& all_tasks();
// By name, ignoring case, '-' and '_' ("sst2", "SST-2", "copa", "ReCoRD"); throws listing the names.
const Task& find_task(const std::string& name);

// One record as text. Classification tasks: options[c] = template.verbalize(sample, candidate c), and
// `correct` holds the correct candidates (ReCoRD: every entity that is an answer, first occurrence).
// Generation tasks: options = {verbalize(sample, answers)}, the training target, and `answers` every gold
// answer (F1 takes the best).
struct TaskText {
  std::string prompt;  // template.encode(sample)
  std::vector<std::string> options;
  std::vector<int64_t> correct;
  std::vector<std::string> answers;
};

// Throws zo2::Error "<where>: field 'x' ..." for a missing field, a wrong type or an unknown label;
// `where` is "file:line".
TaskText render(const Task& task, const nlohmann::json& record, const std::string& where);

}  // namespace zo2
