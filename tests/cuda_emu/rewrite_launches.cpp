// Build-time rewrite of a CUDA source into host C++ for the emulator:
//
//   kernel<T><<<grid, block, smem, stream>>>(args)
//     -> ::cuda_emu::launch("kernel<T>", __FILE__, __LINE__, kernel<T>,
//                           ::cuda_emu::config(grid, block, smem, stream), args)
//   extern __shared__ T name[];
//     -> T* name = ::cuda_emu::dynamic_shared<T>();
//   cudaFuncSetAttribute(kernel<T>, attr, value)
//     -> ::cuda_emu::func_set_attribute("kernel<T>", attr, value)
//
// The launch calls a generic lambda, [](auto... args) { kernel<T>(args...); }, so that template
// arguments left out are deduced from the arguments, as nvcc does; the kernel is known to the
// runtime by its text (for the dynamic shared memory attribute).
//
// Nothing else changes, and every newline stays where it was: with the #line directive in
// front, compiler messages, __FILE__/__LINE__ and std::source_location point into the original
// .cu file.
//
//   rewrite_launches IN.cu OUT.cpp
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {

[[noreturn]] void die(const std::string& file, const std::string& src, size_t at,
                      const std::string& what) {
  size_t line = 1;
  for (size_t i = 0; i < at && i < src.size(); ++i) line += src[i] == '\n';
  std::cerr << file << ":" << line << ": rewrite_launches: " << what << "\n";
  std::exit(1);
}

// Copies the newlines of s, so that the output keeps the line numbers of the input.
std::string newlines_of(const std::string& s) {
  std::string n;
  for (char c : s)
    if (c == '\n') n += '\n';
  return n;
}

std::string collapse(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c == '"' ? '\'' : c;
  }
  return out;
}

bool ident(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Marks which bytes of src are code (not comments, string or character literals).
std::string code_mask(const std::string& s) {
  std::string m(s.size(), 'c');
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n') m[i++] = ' ';
    } else if (s.compare(i, 2, "/*") == 0) {
      const size_t e = s.find("*/", i + 2);
      const size_t end = e == std::string::npos ? s.size() : e + 2;
      while (i < end) m[i++] = ' ';
    } else if (s[i] == '"' || s[i] == '\'') {
      const char q = s[i];
      m[i++] = ' ';
      while (i < s.size() && s[i] != q) {
        if (s[i] == '\\') m[i++] = ' ';
        if (i < s.size()) m[i++] = ' ';
      }
      if (i < s.size()) m[i++] = ' ';
    } else {
      ++i;
    }
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: rewrite_launches IN.cu OUT.cpp\n";
    return 2;
  }
  const std::string in = argv[1];
  std::ifstream f(in, std::ios::binary);
  if (!f) {
    std::cerr << "rewrite_launches: cannot read " << in << "\n";
    return 1;
  }
  std::stringstream buf;
  buf << f.rdbuf();
  std::string src = buf.str();

  // extern __shared__ T name[];
  for (size_t at = 0;;) {
    const std::string mask = code_mask(src);
    size_t p = src.find("extern __shared__", at);
    while (p != std::string::npos && mask[p] != 'c') p = src.find("extern __shared__", p + 1);
    if (p == std::string::npos) break;
    const size_t semi = src.find(';', p);
    const size_t open = src.rfind('[', semi);
    if (semi == std::string::npos || open == std::string::npos || open < p)
      die(in, src, p, "expected  extern __shared__ T name[];");
    std::string decl = src.substr(p + 17, open - (p + 17));  // " T name"
    size_t ne = decl.find_last_not_of(" \t\n");
    size_t nb = ne;
    while (nb > 0 && ident(decl[nb - 1])) --nb;
    const std::string name = decl.substr(nb, ne + 1 - nb);
    std::string type = decl.substr(0, nb);
    // __align__(n) belongs to the declaration, not to the type.
    const size_t al = type.find("__align__");
    if (al != std::string::npos) type.erase(al, type.find(')', al) + 1 - al);
    type = collapse(type);
    const std::string repl = type + "* " + name + " = ::cuda_emu::dynamic_shared<" + type + ">();";
    src.replace(p, semi + 1 - p, repl + newlines_of(src.substr(p, semi + 1 - p)));
    at = p + repl.size();
  }

  // cudaFuncSetAttribute(kernel, ...)
  for (size_t at = 0;;) {
    const std::string mask = code_mask(src);
    const std::string fn = "cudaFuncSetAttribute(";
    size_t p = src.find(fn, at);
    while (p != std::string::npos &&
           (mask[p] != 'c' || (p > 0 && (ident(src[p - 1]) || src[p - 1] == ':'))))
      p = src.find(fn, p + 1);
    if (p == std::string::npos) break;
    size_t c = p + fn.size();
    int depth = 0;
    while (c < src.size() && !(depth == 0 && src[c] == ',')) {
      if (src[c] == '(' || src[c] == '<') ++depth;
      if (src[c] == ')' || src[c] == '>') --depth;
      ++c;
    }
    if (c >= src.size()) die(in, src, p, "expected cudaFuncSetAttribute(kernel, attribute, value)");
    const std::string kernel = src.substr(p + fn.size(), c - (p + fn.size()));
    const std::string repl =
        "::cuda_emu::func_set_attribute(\"" + collapse(kernel) + "\"" + newlines_of(kernel);
    src.replace(p, c - p, repl);
    at = p + repl.size();
  }

  // kernel<<<config>>>(args)
  std::string out;
  size_t copied = 0;
  const std::string mask = code_mask(src);
  for (size_t p = src.find("<<<"); p != std::string::npos; p = src.find("<<<", p + 3)) {
    if (mask[p] != 'c') continue;
    // The kernel expression before <<<: an identifier, maybe qualified, maybe with template
    // arguments.
    size_t k = p;
    while (k > 0 && std::isspace(static_cast<unsigned char>(src[k - 1]))) --k;
    const size_t kend = k;
    if (k > 0 && src[k - 1] == '>') {
      int depth = 0;
      do {
        --k;
        if (src[k] == '>') ++depth;
        if (src[k] == '<') --depth;
      } while (k > 0 && depth > 0);
      if (depth != 0) die(in, src, p, "unbalanced template arguments before <<<");
    }
    while (k > 0 && (ident(src[k - 1]) || src[k - 1] == ':')) --k;
    if (k == kend) die(in, src, p, "no kernel name before <<<");
    if (k < copied) die(in, src, p, "a launch inside another launch's arguments");
    // The configuration up to >>> (at parenthesis depth 0).
    size_t c = p + 3;
    int depth = 0;
    while (c < src.size() && !(depth == 0 && src.compare(c, 3, ">>>") == 0)) {
      if (src[c] == '(') ++depth;
      if (src[c] == ')') --depth;
      ++c;
    }
    if (c >= src.size()) die(in, src, p, "no >>> after <<<");
    // The arguments in parentheses.
    size_t a = c + 3;
    while (a < src.size() && std::isspace(static_cast<unsigned char>(src[a]))) ++a;
    if (a >= src.size() || src[a] != '(') die(in, src, p, "expected ( after >>>");
    size_t e = a;
    depth = 0;
    do {
      if (mask[e] == 'c') {
        if (src[e] == '(') ++depth;
        if (src[e] == ')') --depth;
      }
      ++e;
    } while (e < src.size() && depth > 0);
    if (depth != 0) die(in, src, p, "unbalanced parentheses in the launch arguments");
    const std::string kernel = src.substr(k, kend - k);
    const std::string gap = src.substr(kend, p - kend);
    const std::string cfg = src.substr(p + 3, c - (p + 3));
    const std::string gap2 = src.substr(c + 3, a - (c + 3));
    const std::string args = src.substr(a + 1, e - 1 - (a + 1));
    const bool no_args = args.find_first_not_of(" \t\n") == std::string::npos;
    out += src.substr(copied, k - copied);
    out += "::cuda_emu::launch(\"" + collapse(kernel) +
           "\", __FILE__, __LINE__, [](auto... cuda_emu_args_) { " + kernel +
           "(cuda_emu_args_...); }" + newlines_of(gap) + ", ::cuda_emu::config(" + cfg + ")" +
           newlines_of(gap2) + (no_args ? "" : ", ") + args + ")";
    copied = e;
    p = e - 3;
  }
  out += src.substr(copied);

  std::ofstream o(argv[2], std::ios::binary);
  o << "// Generated by tests/cuda_emu/rewrite_launches from " << in << ": do not edit.\n";
  o << "#line 1 \"" << in << "\"\n" << out;
  if (!o) {
    std::cerr << "rewrite_launches: cannot write " << argv[2] << "\n";
    return 1;
  }
  return 0;
}
