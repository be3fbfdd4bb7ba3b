// The to-do list's types, bound to its schema (replog/binding.h), and its
// own method. Shared by the app (todo.cc) and the library's tests, which
// replay what the app writes.
#pragma once

#include <replog/replog.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace todo {

enum class Priority { kLow, kHigh };

struct Task {
  std::string title;
  Priority priority = Priority::kLow;
  std::optional<std::chrono::sys_days> due;
  bool done = false;
  bool operator==(const Task&) const = default;
};

// The argument of the app's own method "renameTask".
struct RenameTask {
  std::string id;
  std::string title;
};

// Titles are unique: two devices that add the same title while apart meet a
// conflict when they sync, which the list shows until someone resolves it.
constexpr const char* kSchema = R"({
  "enums": {"Priority": ["Low", "High"]},
  "records": {
    "Task": {"fields": {"title": "string", "priority": "Priority", "due": "time", "done": "bool"},
             "required": ["title"], "unique": ["title"]},
    "RenameTask": {"fields": {"id": "string", "title": "string"}}
  }
})";

}  // namespace todo

template <>
struct replog::Bind<todo::Priority> {
  static const EnumBinding<todo::Priority>& binding() {
    static const EnumBinding<todo::Priority> b("Priority",
                                               {{todo::Priority::kLow, "Low"}, {todo::Priority::kHigh, "High"}});
    return b;
  }
};

template <>
struct replog::Bind<todo::Task> {
  static const RecordBinding<todo::Task>& binding() {
    using todo::Task;
    static const auto b = RecordBinding<Task>("Task")
                              .field("title", &Task::title)
                              .field("priority", &Task::priority)
                              .field("due", &Task::due)
                              .field("done", &Task::done);
    return b;
  }
};

template <>
struct replog::Bind<todo::RenameTask> {
  static const RecordBinding<todo::RenameTask>& binding() {
    using todo::RenameTask;
    static const auto b =
        RecordBinding<RenameTask>("RenameTask").field("id", &RenameTask::id).field("title", &RenameTask::title);
    return b;
  }
};

namespace todo {

// renameTask: a pure function of (state, argument, update id). Renaming a
// task that does not exist fails alike on every device: a MethodFailure.
inline std::optional<replog::MethodFailure> rename_task(replog::MethodContext& ctx, const RenameTask& arg) {
  if (!ctx.view().record<Task>(arg.id))
    throw replog::MethodFailure{replog::ConflictKind::kMissing, "no task " + arg.id, {"Task", arg.id}, {}};
  return ctx.set({"Task", arg.id, "title"}, replog::Value(arg.title));
}

// The built-ins and renameTask.
inline std::shared_ptr<const replog::MethodRegistry> methods() {
  auto m = std::make_shared<replog::MethodRegistry>(replog::MethodRegistry::with_builtins());
  (void)m->add_typed<RenameTask>("renameTask", "1", rename_task);
  return m;
}

}  // namespace todo
