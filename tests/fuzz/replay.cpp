// nabla_fuzz_replay: the fuzz regression corpus as a test, built with any compiler.
//
//   nabla_fuzz_replay REGRESSIONS_DIR      every file under REGRESSIONS_DIR/<target>/ must make its
//                                          loader throw nabla::Error (never crash, never another
//                                          exception), with the message that expected.tsv names;
//                                          every seed of every target must load; plus the cases
//                                          too large to commit, generated here
//   nabla_fuzz_replay --seeds OUT_DIR      writes each target's seed corpus to OUT_DIR/<target>/
//
// Each case runs in a child process, so a crash (the bugs this corpus holds) fails that case and
// the others still run. Exit 0 when every case holds, 1 otherwise (each failure printed).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "targets.h"

namespace fs = std::filesystem;
using nabla::fuzz::Target;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string first_line(const std::string& s, size_t max = 200) {
  std::string l = s.substr(0, s.find('\n'));
  return l.size() > max ? l.substr(0, max) + "..." : l;
}

int failures = 0;

struct Outcome {
  std::string msg;  // run()'s result
  int signal = 0;   // the signal that ended the child, -1 for another abnormal end, else 0
};

// Runs `body` in a child process and returns what it wrote to the pipe. The parent never runs a
// loader (nor OpenMP, whose thread pool does not survive fork).
template <typename F>
Outcome in_child(F&& body) {
  int fd[2];
  if (pipe(fd) != 0) {
    std::perror("pipe");
    std::exit(2);
  }
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    const std::string msg = body();
    size_t off = 0;
    while (off < msg.size()) {
      const ssize_t w = write(fd[1], msg.data() + off, msg.size() - off);
      if (w <= 0) break;
      off += size_t(w);
    }
    _exit(0);
  }
  close(fd[1]);
  Outcome o;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) o.msg.append(buf, size_t(n));
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st))
    o.signal = WTERMSIG(st);
  else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    o.signal = -1;
  return o;
}

Outcome run_isolated(const Target& t, const std::string& bytes) {
  return in_child(
      [&] { return t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()); });
}

// A malformed input: the loader must refuse it with a message that contains `expect` (when given).
void expect_error(const Target& t, const std::string& label, const std::string& bytes,
                  const std::string& expect) {
  const Outcome o = run_isolated(t, bytes);
  const std::string& msg = o.msg;
  if (o.signal != 0) {
    std::printf("FAIL %s: the loader died (%s)\n", label.c_str(),
                o.signal > 0 ? strsignal(o.signal) : "abnormal exit");
    ++failures;
  } else if (msg.rfind(nabla::fuzz::kFinding, 0) == 0) {
    std::printf("FAIL %s: %s\n", label.c_str(), first_line(msg).c_str());
    ++failures;
  } else if (msg.empty()) {
    std::printf("FAIL %s: loaded without an error\n", label.c_str());
    ++failures;
  } else if (!expect.empty() && msg.find(expect) == std::string::npos) {
    std::printf("FAIL %s: the error lacks \"%s\": %s\n", label.c_str(), expect.c_str(),
                first_line(msg).c_str());
    ++failures;
  } else {
    std::printf("ok   %s: %s\n", label.c_str(), first_line(msg).c_str());
  }
}

// expected.tsv: "<target>/<file>\t<substring the error message must contain>" per line.
std::map<std::string, std::string> read_expected(const fs::path& dir) {
  std::map<std::string, std::string> m;
  std::istringstream in(read_file(dir / "expected.tsv"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab != std::string::npos) m[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return m;
}

// The cases too large to commit: JSON nested 10^6 deep (2 MB). Before the depth limit, the error
// message dumped the value and nlohmann's recursive serializer overflowed the stack.
void generated_cases() {
  const Target& st = nabla::fuzz::target("safetensors");
  for (const char* where : {"value", "metadata"}) {
    const size_t depth = 1000000;
    std::string json = std::string(where) == "value" ? "{\"a\":" : "{\"__metadata__\":";
    json += std::string(depth, '[') + std::string(depth, ']') + "}";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char((uint64_t(json.size()) >> (8 * i)) & 0xff);
    expect_error(st, std::string("safetensors/(generated) ") + where + " nested 10^6 deep",
                 bytes + json, "nests deeper than 64");
  }
}

void write_seeds(const fs::path& out) {
  for (const Target& t : nabla::fuzz::targets()) {
    fs::create_directories(out / t.name);
    int i = 0;
    for (const std::string& s : t.seeds())
      std::ofstream(out / t.name / ("seed_" + std::to_string(i++)), std::ios::binary) << s;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--seeds") {
    write_seeds(argv[2]);
    return 0;
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: nabla_fuzz_replay REGRESSIONS_DIR | --seeds OUT_DIR\n");
    return 2;
  }
  nabla::fuzz::set_abort_on_finding(false);
  const fs::path root = argv[1];
  const auto expected = read_expected(root);
  nabla::fuzz::scratch_dir();  // made (and removed at exit) by this process; the children use it

  // The seeds are valid files written by the project's own writers: each must load.
  const fs::path seed_dir = fs::path(nabla::fuzz::scratch_dir()) / "seeds";
  const Outcome w = in_child([&] {
    write_seeds(seed_dir);
    return std::string();
  });
  if (w.signal != 0) {
    std::printf("FAIL: writing the seeds failed\n");
    return 1;
  }
  size_t files = 0;
  for (const Target& t : nabla::fuzz::targets()) {
    std::vector<fs::path> ps;
    for (const auto& e : fs::directory_iterator(seed_dir / t.name)) ps.push_back(e.path());
    std::sort(ps.begin(), ps.end());
    for (const fs::path& p : ps) {
      const Outcome o = run_isolated(t, read_file(p));
      const bool ok = o.signal == 0 && o.msg.empty();
      std::printf("%s %s/%s loads\n", ok ? "ok  " : "FAIL", t.name, p.filename().c_str());
      if (!ok) std::printf("     %s\n", first_line(o.msg).c_str()), ++failures;
    }
    const fs::path dir = root / t.name;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> paths;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    for (const fs::path& p : paths) {
      const std::string key = std::string(t.name) + "/" + p.filename().string();
      auto it = expected.find(key);
      expect_error(t, key, read_file(p), it == expected.end() ? "" : it->second);
      ++files;
    }
  }
  for (const auto& [key, _] : expected)
    if (!fs::exists(root / key)) {
      std::printf("FAIL %s: listed in expected.tsv but missing\n", key.c_str());
      ++failures;
    }
  generated_cases();
  std::printf("%zu regression files, %d failure(s)\n", files, failures);
  return failures ? 1 : 0;
}
