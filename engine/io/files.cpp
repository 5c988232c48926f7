// Folder creation with errors that name the path (see files.h).
#include <nabla/io/files.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include <nabla/error.h>

namespace nabla::io {

void create_dirs(const std::string& dir, const std::string& purpose) {
  namespace fs = std::filesystem;
  NABLA_CHECK(!dir.empty(), "cannot create ", purpose, ": the path is empty");
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (fs::is_directory(st)) return;
  NABLA_CHECK(!fs::exists(st), "cannot create ", purpose, " ", dir,
              ": a file of that name exists and is not a folder");
  fs::create_directories(dir, ec);
  NABLA_CHECK(!ec, "cannot create ", purpose, " ", dir, ": ", ec.message());
  NABLA_CHECK(fs::is_directory(dir, ec), "cannot create ", purpose, " ", dir,
              ": it does not exist after creating it");
}

std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const size_t tid = std::hash<std::thread::id>{}(std::this_thread::get_id());
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(tid % 1000000) + "." +
         std::to_string(counter.fetch_add(1));
}

}  // namespace nabla::io
