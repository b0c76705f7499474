// libFuzzer target: hydra-attribute's command line (examples/hydra_attribute/options.hpp), the
// code every argument meets before a file is read. The input is the argument list, one argument
// per line. Parsing may fail only with CLI11's parse errors, checking only with a hydra::error
// whose exit code is bad input (docs/attribution.md, "Exit codes"); a command line that passes
// must hold the values check_options promises.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "hydra_attribute/options.hpp"

namespace {

/// The input's lines as argv (after the program's name).
std::vector<std::string> arguments(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"hydra-attribute"};
  std::string current;
  for (std::size_t k = 0; k < size; ++k) {
    const char c = static_cast<char>(data[k]);
    if (c == '\n') {
      args.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) args.push_back(current);
  return args;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hydra::cli;
  const auto args = arguments(data, size);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());

  options opt;
  CLI::App app{"hydra-attribute"};
  add_options(app, opt);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    (void)app.help();  // --help's text is built from every option's description
    return 0;
  } catch (const CLI::ParseError&) {
    return 0;  // one line and exit code 1 in hydra-attribute (use_one_line_errors)
  }
  // Anything but a hydra::error aborts (fuzz_support.hpp); a hydra::error must mean bad input.
  hydra::fuzz::expect_only_hydra_errors([&] {
    try {
      check_options(app, opt);
    } catch (const hydra::error& e) {
      HYDRA_FUZZ_CHECK(exit_code_of(e) == exit_code::bad_input);
      HYDRA_FUZZ_CHECK(!without_library_prefix(e.what()).empty());
      throw;
    }
    HYDRA_FUZZ_CHECK(opt.epochs >= 1 && opt.batch_size >= 1 && opt.checkpoint_every >= 0);
    HYDRA_FUZZ_CHECK(!opt.lr_file.empty() || (std::isfinite(opt.lr) && opt.lr > 0));
    HYDRA_FUZZ_CHECK(std::isfinite(opt.momentum) && opt.momentum >= 0 && opt.momentum < 1);
    HYDRA_FUZZ_CHECK(std::isfinite(opt.weight_decay) && opt.weight_decay >= 0);
    HYDRA_FUZZ_CHECK(opt.max_loss >= 0 && !std::isnan(opt.max_loss));
    HYDRA_FUZZ_CHECK(std::to_string(opt.seed) == opt.seed_text || opt.seed_text.find_first_not_of('0') != 0);
    HYDRA_FUZZ_CHECK(!opt.out.empty());
    if (opt.method == "influence")
      HYDRA_FUZZ_CHECK(opt.damping >= 0 && opt.cg_tolerance > 0 && opt.cg_max_iterations >= 1 &&
                       opt.lissa_scale > 0 && opt.lissa_depth >= 1 && opt.lissa_repeats >= 1);
  });
  return 0;
}
