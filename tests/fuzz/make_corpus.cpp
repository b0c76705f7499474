// Writes the seed corpora of the fuzz targets: make_corpus <dir> fills <dir>/<target>/ with small
// valid inputs, written by hydra's own writers where it has one (save_npy, archive_writer). The
// committed tests/fuzz/corpus/ is this program's output; rerun it after changing a format:
//   cmake --build build/fuzz --target fuzz_make_corpus && build/fuzz/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_archive_schema.hpp"
#include "hydra/core/archive.hpp"
#include "hydra/data/npy.hpp"

namespace {
namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

void write_file(const fs::path& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) throw std::runtime_error("make_corpus: cannot write " + path.string());
}
void write_file(const fs::path& path, const bytes& b) { write_file(path, b.data(), b.size()); }
void write_file(const fs::path& path, const std::string& s) { write_file(path, s.data(), s.size()); }

void write_gz(const fs::path& path, const bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb9");
  if (f == nullptr) throw std::runtime_error("make_corpus: cannot open " + path.string());
  const int n = gzwrite(f, b.data(), static_cast<unsigned>(b.size()));
  if (gzclose(f) != Z_OK || n != static_cast<int>(b.size()))
    throw std::runtime_error("make_corpus: cannot write " + path.string());
}

void npy(const fs::path& dir) {
  const std::vector<float> x{0.5f, -1.f, 2.f, 3.25f, 0.f, -0.125f};
  hydra::save_npy(dir / "float32_2x3.npy", x, {2, 3});
  const std::vector<double> d{1.0, -2.5, 1e-300};
  hydra::save_npy(dir / "float64_3.npy", d, {3});
  const std::vector<std::int64_t> labels{0, 1, 2, 1};
  hydra::save_npy(dir / "int64_labels_4.npy", labels, {4});
  const std::vector<std::uint8_t> small{3, 0, 9, 1};
  hydra::save_npy(dir / "uint8_labels_4x1.npy", small, {4, 1});
  const std::vector<std::int32_t> indices{0, 3, 1, 2};
  hydra::save_npy(dir / "int32_indices_2x2.npy", indices, {2, 2});
  // Format 2.0, keys out of numpy's order, double quotes and a Python 2 long, written by hand.
  const std::string dict = "{\"shape\": (2L, 1), 'fortran_order': False, 'descr': '<i4', }\n";
  bytes b{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0};
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(dict.size() >> (8 * i)));
  b.insert(b.end(), dict.begin(), dict.end());
  for (const std::int32_t v : {7, 8})
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  write_file(dir / "v2_int32_2x1.npy", b);
}

void append_u32_be(bytes& b, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<std::uint8_t>((v >> shift) & 0xff));
}

void idx(const fs::path& dir) {
  bytes images;  // 2 images of 2 x 2
  append_u32_be(images, 0x00000803);
  for (const std::uint32_t dim : {2u, 2u, 2u}) append_u32_be(images, dim);
  for (const std::uint8_t p : {0, 64, 128, 255, 1, 2, 3, 4}) images.push_back(p);
  bytes labels;  // 2 labels
  append_u32_be(labels, 0x00000801);
  append_u32_be(labels, 2);
  labels.push_back(7);
  labels.push_back(2);
  write_file(dir / "images_2x2x2.idx", images);
  write_gz(dir / "images_2x2x2.idx.gz", images);
  write_file(dir / "labels_2.idx", labels);
  write_gz(dir / "labels_2.idx.gz", labels);
}

void cifar(const fs::path& dir) {
  bytes b;  // 2 records: a label byte and 3072 pixel bytes each
  for (const std::uint8_t label : {3, 9}) {
    b.push_back(label);
    for (int k = 0; k < 3072; ++k) b.push_back(static_cast<std::uint8_t>((k * 7 + label) & 0xff));
  }
  write_file(dir / "two_records.bin", b);
}

void archive(const fs::path& dir) {
  using namespace hydra::fuzz::archive_schema;
  hydra::archive_writer out(dir / "schema.hyarc");
  out.write_string("format", "hydra-fuzz");
  out.write_value<std::uint32_t>("version", 1);
  out.write_value<std::int64_t>("steps_done", 12);
  const std::vector<float> parameters(parameter_count, 0.25f);
  out.write<float>("parameters", parameters);
  const std::vector<double> history{0.5, 0.25, 0.125};
  out.write<double>("history", history);
  const bool flags[] = {true, false, true};
  out.write<bool>("flags", flags);
  out.write_value("record", record{.id = 3, .weight = 1.5f});
  const std::vector<std::int32_t> chunks{1, 2, 3, 4, 5};
  out.begin_array<std::int32_t>("chunks", chunks.size());
  out.append<std::int32_t>(std::span(chunks).first(2));
  out.append<std::int32_t>(std::span(chunks).subspan(2));
  const std::vector<std::uint16_t> opaque{9, 8, 7};
  out.write<std::uint16_t>("opaque", opaque);
  out.commit();
}

void model_spec(const fs::path& dir) {
  const char* specs[] = {"mlp:4,3,2", "mlp:4,3,2:tanh", "mlp:784,64,32,10:sigmoid", "softmax:4,3", "lenet5"};
  int k = 0;
  for (const char* spec : specs) write_file(dir / ("spec_" + std::to_string(k++)), std::string(spec));
}
/// Command lines of hydra-attribute, one argument per line: a plain run, every method, and the
/// tracking, influence and checkpoint flags.
void cli_arguments(const fs::path& dir) {
  const std::string data = "--train-x\nx.npy\n--train-y\ny.npy\n--test-x\nxt.npy\n--test-y\nyt.npy\n--out\nout\n";
  const char* lines[] = {
      "--model\nmlp:4,3,2",
      "--model\nsoftmax:4,3\n--method\nexact\n--lean\n--adjoint-checkpoint-every\n8",
      "--model\nlenet5\n--method\ninfluence\n--ihvp\nlissa\n--damping\n0.01\n--lissa-scale\n25\n--lissa-depth\n100",
      "--model\nmlp:4,3,2\n--method\ninfluence\n--ihvp\ncg\n--cg-tol\n1e-8\n--cg-max-iter\n50",
      "--model\nmlp:4,3,2\n--method\ntracin\n--tracin-every\n2\n--epochs\n4",
      "--model\nmlp:4,3,2\n--checkpoint\nck\n--checkpoint-every\n10\n--seed\n18446744073709551615",
      "--model\nmlp:4,3,2\n--lr\n0.1\n--momentum\n0.9\n--weight-decay\n1e-4\n--max-loss\ninf\n--precision\nfloat64",
      "--model\nmlp:4,3,2\n--order\no.npy\n--lr-file\nlr.npy\n--update\neager\n--state-dir\ns",
      "--help"};
  int k = 0;
  for (const char* line : lines) write_file(dir / ("args_" + std::to_string(k++)), data + line);
}
} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  const std::pair<const char*, void (*)(const fs::path&)> targets[] = {
      {"fuzz_npy", npy}, {"fuzz_idx", idx}, {"fuzz_cifar", cifar}, {"fuzz_archive", archive},
      {"fuzz_model_spec", model_spec}, {"fuzz_cli_arguments", cli_arguments}};
  for (const auto& [name, write] : targets) {
    fs::create_directories(root / name);
    write(root / name);
  }
  return 0;
}
