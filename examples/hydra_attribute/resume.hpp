#pragma once
// hydra-attribute's --resume safety: the run's fingerprint in every checkpoint directory, its
// comparison with the run that resumes, and the locks that keep two runs out of one directory.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hydra/core/archive.hpp>
#include <hydra/core/io/directory_lock.hpp>
#include <hydra/hydra.hpp>

#include "options.hpp"

namespace hydra::cli {

// ---- resuming safely: the run's fingerprint and the directory locks ------------------------------
//
// A checkpoint holds the trainer's state, not what produced it: a checkpoint of another run with
// as many parameters (another training set of the same shape, another --lr, another activation)
// would resume silently and give numbers that belong to neither run. So every checkpoint directory
// hydra-attribute writes also holds the fingerprint of the run, field by field, and --resume
// refuses, before any training, a run whose fingerprint differs, naming the first field that does.
//
// What the fingerprint holds: everything that decides the outputs — the content hash of every
// input file (--train-x, --train-y, --test-x, --test-y, --init, --order, --lr-file, --track),
// --model (the spec string, activation included), the loss, --epochs, --batch-size, --seed, --lr,
// --momentum, --weight-decay, --method, the effective --update, --method influence's --ihvp,
// --damping, --cg-tol, --cg-max-iter and --lissa-*, --precision, --device, and the fingerprint of
// the batch order itself (train/checkpoint.hpp), which also catches a change in how hydra shuffles.
// For a model with batch norms also the effective --batch-norm and the content hash of
// --init-buffers (the running statistics the run started from; a resumed run takes its own from
// the checkpoint, so only the fingerprint can tell that they differ). A model without batch norms
// records neither, so that its checkpoints made before these flags existed still resume.
//
// What it deliberately leaves out, because it does not change a single output bit:
//   --out                     where the results go;
//   --checkpoint, --resume    where checkpoints go and come from (a run may move to another folder);
//   --checkpoint-every        when checkpoints are taken (a resumed run is bit-identical either way);
//   --state-dir               where the tracker's states live (memory or a mapped file: same bytes);
//   --list-devices, --help    they run nothing.
// And what cannot be combined with --checkpoint or --resume at all (refused by tracking_settings):
// --lean, --adjoint-checkpoint-every (exact --lean only) and --tracin-every (--method tracin only).

/// The file in a checkpoint directory that holds the fingerprint of the run that writes it.
inline constexpr const char* fingerprint_file_name = "hydra-attribute.fingerprint";
inline constexpr const char* fingerprint_format = "hydra-attribute.fingerprint";
inline constexpr std::uint32_t fingerprint_version = 1;

/// A stable 64-bit hash of a file's bytes: hydra's archive checksum (core/io/checksum.hpp), the same
/// on every run and every build, unlike std::hash. It identifies content; it is not cryptographic.
inline std::uint64_t content_hash(const std::string& flag, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw hydra::io_error(flag + " " + file + ": cannot open it to fingerprint the run");
  detail::archive::checksum64 hash;
  std::vector<char> chunk(std::size_t(1) << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hash.update(chunk.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw hydra::io_error(flag + " " + file + ": cannot read it to fingerprint the run");
  return hash.digest();
}

inline std::string hex(std::uint64_t v) { return fmt::format("0x{:016x}", v); }

/// The shortest text that reads back as the same double.
inline std::string shortest(double v) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, v);
  return std::string(text, result.ptr);
}

/// One field of the fingerprint: the flag it comes from and its value as text. A file's value is
/// its content hash (0x + 16 hex digits), "" when the flag was not given (--track: "all").
struct fingerprint_field {
  std::string flag;
  bool file = false;
  std::string value;
};

/// The fingerprint of this run, in the order its fields are compared (the inputs first).
/// `batch_norms`: whether the model has batch norms (then --batch-norm and --init-buffers count).
inline std::vector<fingerprint_field> run_fingerprint(const options& opt, const batch_order& order, bool batch_norms) {
  std::vector<fingerprint_field> fields;
  const auto file = [&](const char* flag, const std::string& path, const char* absent = "") {
    fields.push_back({flag, true, path.empty() || path == absent ? std::string(absent) : hex(content_hash(flag, path))});
  };
  const auto value = [&](const char* flag, std::string text) { fields.push_back({flag, false, std::move(text)}); };
  file("--train-x", opt.train_x);
  file("--train-y", opt.train_y);
  file("--test-x", opt.test_x);
  file("--test-y", opt.test_y);
  value("--model", opt.model);
  value("loss", "softmax-cross-entropy");  // hydra-attribute has no other; recorded for when it does
  file("--init", opt.init);
  if (batch_norms) {
    file("--init-buffers", opt.init_buffers);
    value("--batch-norm", batch_norm_mode(opt));
  }
  file("--order", opt.order);
  value("--epochs", std::to_string(opt.epochs));
  value("--batch-size", std::to_string(opt.batch_size));
  value("--seed", std::to_string(opt.seed));
  value("--lr", shortest(opt.lr));
  file("--lr-file", opt.lr_file);
  value("--momentum", shortest(opt.momentum));
  value("--weight-decay", shortest(opt.weight_decay));
  file("--track", opt.track, "all");
  value("--method", opt.method);
  const std::string update = !opt.update.empty()            ? opt.update
                             : opt.method == "hessian-free" ? "lazy"
                             : opt.method == "exact"        ? "eager"
                                                            : "none";
  value("--update", update);
  if (opt.method == "influence") {
    value("--ihvp", opt.ihvp);
    value("--damping", shortest(opt.damping));
    value("--cg-tol", shortest(opt.cg_tolerance));
    value("--cg-max-iter", std::to_string(opt.cg_max_iterations));
    value("--lissa-scale", shortest(opt.lissa_scale));
    value("--lissa-depth", std::to_string(opt.lissa_depth));
    value("--lissa-repeats", std::to_string(opt.lissa_repeats));
  }
  value("--precision", opt.precision);
  value("--device", opt.device);
  fields.push_back({"batch order", true, hex(hydra::fingerprint(order))});
  return fields;
}

/// Writes the fingerprint into `directory`, atomically (archive_writer: temp file, fsync, rename).
inline void save_fingerprint(const std::filesystem::path& directory, const std::vector<fingerprint_field>& fields) {
  archive_writer out(directory / fingerprint_file_name);
  out.write_string("format", fingerprint_format);
  out.write_value<std::uint32_t>("version", fingerprint_version);
  out.write_value<std::uint64_t>("fields", fields.size());
  for (const auto& f : fields) {
    out.write_string("flag", f.flag);
    out.write_value<bool>("file", f.file);
    out.write_string("value", f.value);
  }
  out.commit();
}

inline std::vector<fingerprint_field> load_fingerprint(const std::filesystem::path& file) {
  archive_reader in(file);
  const auto format = in.read_string("format", 64);
  if (format != fingerprint_format) fail(file.string() + " is not a hydra-attribute fingerprint (format '" + format + "')");
  const auto version = in.read_value<std::uint32_t>("version");
  if (version != fingerprint_version)
    fail(file.string() + " has version " + std::to_string(version) + "; this hydra-attribute reads version " +
         std::to_string(fingerprint_version));
  const auto count = in.read_value<std::uint64_t>("fields");
  if (count > 1000) fail(file.string() + " claims " + std::to_string(count) + " fields; it is corrupt");
  std::vector<fingerprint_field> fields(static_cast<std::size_t>(count));
  for (auto& f : fields) {
    f.flag = in.read_string("flag", 256);
    f.file = in.read_value<bool>("file");
    f.value = in.read_string("value", 4096);
  }
  in.finish();
  return fields;
}

/// "--lr 0.1", "--train-x (content hash 0x…)", "no --init", "--track all".
inline std::string describe_field(const fingerprint_field& f) {
  if (f.value.empty()) return "no " + f.flag;
  if (f.file && f.value.rfind("0x", 0) == 0) return f.flag + " (content hash " + f.value + ")";
  return f.flag + " " + f.value;
}

/// The first difference between the fingerprint stored in a checkpoint directory and this run's,
/// as the rest of a sentence that starts "the checkpoint was made with"; empty when they agree.
inline std::string first_difference(const std::vector<fingerprint_field>& stored,
                                    const std::vector<fingerprint_field>& current) {
  const auto find = [](const std::vector<fingerprint_field>& in, const std::string& flag) {
    return std::find_if(in.begin(), in.end(), [&](const fingerprint_field& f) { return f.flag == flag; });
  };
  for (const auto& mine : current) {
    const auto theirs = find(stored, mine.flag);
    if (theirs == stored.end())
      return "a fingerprint that does not record " + mine.flag + " (another hydra-attribute version), this run has " +
             describe_field(mine);
    if (theirs->value == mine.value) continue;
    const bool hashes = mine.file && theirs->value.rfind("0x", 0) == 0 && mine.value.rfind("0x", 0) == 0;
    if (hashes) return "a different " + mine.flag + " (content hash " + theirs->value + " vs " + mine.value + ")";
    return describe_field(*theirs) + ", this run has " + describe_field(mine);
  }
  for (const auto& theirs : stored)
    if (find(current, theirs.flag) == current.end())
      return describe_field(theirs) + ", which this run does not have (another hydra-attribute version or --method)";
  return {};
}

/// --resume DIR: refuses, before any training, a directory without a checkpoint, without a
/// fingerprint (made by an older hydra-attribute) or with the fingerprint of another run.
inline void check_resumable(const std::filesystem::path& directory, const std::vector<fingerprint_field>& current) {
  const std::string where = "--resume " + directory.string() + ": ";
  if (!std::filesystem::exists(checkpoint_path(directory)))
    fail(where + "there is no checkpoint to resume (no " + checkpoint_path(directory).string() + ")");
  const auto file = directory / fingerprint_file_name;
  if (!std::filesystem::exists(file))
    fail(where + "the checkpoint has no run fingerprint (no " + file.string() +
         "; it was written by an older hydra-attribute), so nothing shows it belongs to this run; start the run "
         "again with --checkpoint");
  const auto difference = first_difference(load_fingerprint(file), current);
  if (!difference.empty()) fail(where + "the checkpoint was made with " + difference);
}

/// The fingerprint's part of a run that checkpoints: --resume's check, then the fingerprint in the
/// directory the checkpoints go to. A fresh run into a --checkpoint DIR removes an earlier
/// checkpoint there first (it would overwrite it at its first checkpoint anyway), so that a
/// directory never pairs one run's fingerprint with another run's checkpoint, even after a crash.
inline void prepare_resume(const options& opt, const batch_order& order, bool batch_norms) {
  if (opt.checkpoint.empty() && opt.resume.empty()) return;
  const auto fields = run_fingerprint(opt, order, batch_norms);
  if (!opt.resume.empty()) check_resumable(opt.resume, fields);
  const std::filesystem::path target = !opt.checkpoint.empty() ? opt.checkpoint : opt.resume;
  if (!opt.resume.empty() && std::filesystem::equivalent(target, opt.resume)) return;  // it holds this fingerprint
  std::filesystem::create_directories(target);
  std::filesystem::remove(checkpoint_path(target));
  save_fingerprint(target, fields);
}

/// The directories this run writes into — --checkpoint, --resume (which it reads, and writes into
/// unless --checkpoint names another) and --state-dir — each locked before anything is written and
/// held until the run ends: two runs sharing one would overwrite each other's checkpoints or
/// states. A directory held by a live process is refused in one line naming it and that PID. A
/// lock left by a process that died is no lock (directory_lock: flock dies with its holder), so
/// after a crash --resume just works.
inline std::vector<directory_lock> lock_directories(const options& opt) {
  std::vector<directory_lock> locks;
  const auto lock = [&](const char* flag, const std::string& directory, bool create) {
    if (directory.empty()) return;
    if (create) std::filesystem::create_directories(directory);
    else if (!std::filesystem::is_directory(directory))
      fail(std::string(flag) + " " + directory + ": there is no checkpoint to resume (no " +
           checkpoint_path(directory).string() + ")");
    for (const auto& held : locks)
      if (std::filesystem::equivalent(held.directory(), directory)) return;
    try {
      locks.emplace_back(directory);
    } catch (const directory_busy& e) {
      throw directory_busy(std::string(flag) + " " + directory + ": the directory is in use by " +
                               (e.holder() > 0 ? "process " + std::to_string(e.holder())
                                               : std::string("another process")) +
                               " (it holds " + (std::filesystem::path(directory) / directory_lock::file_name).string() +
                               "); two runs cannot share it",
                           e.directory(), e.holder());
    }
  };
  lock("--resume", opt.resume, false);
  lock("--checkpoint", opt.checkpoint, true);
  if (!tracks_nothing(opt.method)) lock("--state-dir", opt.state_dir, true);
  return locks;
}

} // namespace hydra::cli
