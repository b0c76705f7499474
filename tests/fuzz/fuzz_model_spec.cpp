// libFuzzer target: the model-spec parser (hydra/nn/model_spec.hpp), as hydra-attribute's
// --model reads it. A spec that parses must describe a consistent model; a small one is built.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/nn/model_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  hydra::fuzz::expect_only_hydra_errors([&] {
    const auto spec = hydra::parse_model_spec(text);
    hydra::index product = 1;
    for (const auto d : spec.sample_shape) {
      HYDRA_FUZZ_CHECK(d > 0);
      product *= d;
    }
    HYDRA_FUZZ_CHECK(!spec.sample_shape.empty() && product == spec.inputs && spec.outputs > 0);
    for (const auto h : spec.hidden) HYDRA_FUZZ_CHECK(h > 0);
    // The fixed architectures have their published counts; the others are Dense chains.
    hydra::index fixed = 0;
    if (spec.family == "lenet5") fixed = 61'706;
    if (spec.family == "densenet40") fixed = 176'122;
    if (spec.family == "mobilenetv2") fixed = 2'236'682;
    // Building a model allocates its parameters: only small ones, so that the memory limit
    // catches real over-allocation and not a spec that asks for a large model.
    hydra::index parameters = 0, width = spec.inputs;
    for (const auto h : spec.hidden) {
      parameters += h * (width + 1);
      width = h;
    }
    parameters += spec.outputs * (width + 1);
    if (fixed > 0 || parameters <= 100'000) {
      const auto count = hydra::with_model<float, hydra::cpu>(spec, [](auto& model) { return model.parameter_count(); });
      HYDRA_FUZZ_CHECK(count == (fixed > 0 ? fixed : parameters));
    }
  });
  return 0;
}
