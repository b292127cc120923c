#include "train/trajectory.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/zip_archive.h"  // crc32

namespace zo2 {

namespace {

using nlohmann::json;

constexpr char kMagic[8] = {'Z', 'O', '2', 'T', 'R', 'A', 'J', '\0'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxHeaderJson = 1 << 20;
constexpr uint32_t kSkipped = 1;  // record flag

const char* storage_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: throw_error("trajectory: weights are stored as float32, float16 or bfloat16, not ", t);
  }
}

at::ScalarType parse_storage(const std::string& path, const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  throw_error(path, ": header field 'storage_dtype' is '", s, "' (float32, float16 or bfloat16)");
}

// The model's shape under config.json's names (the name is only a label, so it is left out).
json config_json(const OptConfig& c) {
  return {{"vocab_size", c.vocab_size},         {"hidden_size", c.hidden},
          {"num_hidden_layers", c.layers},      {"num_attention_heads", c.heads},
          {"ffn_dim", c.ffn},                   {"max_position_embeddings", c.max_positions},
          {"word_embed_proj_dim", c.word_embed_dim}, {"do_layer_norm_before", c.pre_ln},
          {"tie_word_embeddings", c.tie_word_embeddings}, {"pad_token_id", c.pad_token_id},
          {"bos_token_id", c.bos_token_id},     {"eos_token_id", c.eos_token_id}};
}

OptConfig config_from_json(const json& j) {
  OptConfig c;
  c.name = "trajectory";
  c.vocab_size = j.at("vocab_size").get<int64_t>();
  c.hidden = j.at("hidden_size").get<int64_t>();
  c.layers = j.at("num_hidden_layers").get<int64_t>();
  c.heads = j.at("num_attention_heads").get<int64_t>();
  c.ffn = j.at("ffn_dim").get<int64_t>();
  c.max_positions = j.at("max_position_embeddings").get<int64_t>();
  c.word_embed_dim = j.at("word_embed_proj_dim").get<int64_t>();
  c.pre_ln = j.at("do_layer_norm_before").get<bool>();
  c.tie_word_embeddings = j.at("tie_word_embeddings").get<bool>();
  c.pad_token_id = j.at("pad_token_id").get<int64_t>();
  c.bos_token_id = j.at("bos_token_id").get<int64_t>();
  c.eos_token_id = j.at("eos_token_id").get<int64_t>();
  return c;
}

json header_json(const TrajectoryHeader& h) {
  return {{"format", "zo2-trajectory"},
          {"seed", h.mezo.seed},
          {"q", h.mezo.q},
          {"perturbation_groups", h.mezo.perturbation_groups},
          {"eps", static_cast<double>(h.mezo.eps)},
          {"weight_decay", static_cast<double>(h.mezo.weight_decay)},
          {"stochastic_rounding", h.mezo.stochastic_round},
          {"storage_dtype", storage_name(h.storage)},
          {"model", config_json(h.cfg)},
          {"base", h.base},
          {"base_checksum", checksum_hex(h.base_checksum)},
          {"first_step", h.first_step},
          {"record_bytes", trajectory_record_bytes(h.dirs())},
          {"run", h.run}};
}

std::string header_bytes(const TrajectoryHeader& h) {
  std::string text = header_json(h).dump();
  // Records start at a multiple of 8 bytes (easier to read with a hex dump).
  while ((16 + text.size() + 4) % 8 != 0) text += ' ';
  std::string out(kMagic, sizeof kMagic);
  const uint32_t version = kVersion, len = static_cast<uint32_t>(text.size());
  out.append(reinterpret_cast<const char*>(&version), 4);
  out.append(reinterpret_cast<const char*>(&len), 4);
  out += text;
  const uint32_t crc = crc32(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  out.append(reinterpret_cast<const char*>(&crc), 4);
  return out;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void store(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string record_bytes(const TrajectoryRecord& r) {
  std::string out;
  store<int64_t>(out, r.step);
  store<float>(out, r.lr);
  store<float>(out, r.loss);
  for (double g : r.g) store<double>(out, g);
  store<uint32_t>(out, r.skipped ? kSkipped : 0u);
  store<uint32_t>(out, crc32(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
  return out;
}

// Parses record bytes; "" on success, else what is wrong.
std::string parse_record(const uint8_t* p, int64_t dirs, int64_t expect_step, TrajectoryRecord* r) {
  const int64_t n = trajectory_record_bytes(dirs);
  if (load<uint32_t>(p + n - 4) != crc32(p, static_cast<size_t>(n - 4))) return "fails its CRC-32 check";
  r->step = load<int64_t>(p);
  r->lr = load<float>(p + 8);
  r->loss = load<float>(p + 12);
  r->g.resize(static_cast<size_t>(dirs));
  for (int64_t d = 0; d < dirs; ++d) r->g[d] = load<double>(p + 16 + 8 * d);
  const uint32_t flags = load<uint32_t>(p + 16 + 8 * dirs);
  r->skipped = (flags & kSkipped) != 0;
  if (flags & ~kSkipped) return "has unknown flags " + std::to_string(flags);
  if (r->step != expect_step) return "holds step " + std::to_string(r->step) + " where step " +
                                     std::to_string(expect_step) + " belongs";
  return "";
}

TrajectoryHeader parse_header(const std::string& path, const std::vector<uint8_t>& f, int64_t* bytes) {
  ZO2_REQUIRE(f.size() >= 20 && std::memcmp(f.data(), kMagic, sizeof kMagic) == 0, path,
              ": not a zo2 trajectory log (no ZO2TRAJ header)");
  const uint32_t version = load<uint32_t>(f.data() + 8), len = load<uint32_t>(f.data() + 12);
  ZO2_REQUIRE(version == kVersion, path, ": trajectory format version ", version, " (this zo2 reads version ",
              kVersion, ")");
  ZO2_REQUIRE(len <= kMaxHeaderJson && 16 + len + 4 <= f.size(), path, ": truncated trajectory header");
  ZO2_REQUIRE(load<uint32_t>(f.data() + 16 + len) == crc32(f.data(), 16 + len), path,
              ": trajectory header fails its CRC-32 check (corrupt)");
  *bytes = 16 + len + 4;
  TrajectoryHeader h;
  try {
    const json j = json::parse(f.begin() + 16, f.begin() + 16 + len);
    ZO2_REQUIRE(j.at("format") == "zo2-trajectory", path, ": header format is ", j.at("format").dump());
    h.mezo.seed = j.at("seed").get<uint64_t>();
    h.mezo.q = j.at("q").get<int64_t>();
    h.mezo.perturbation_groups = j.at("perturbation_groups").get<int64_t>();
    h.mezo.eps = static_cast<float>(j.at("eps").get<double>());
    h.mezo.weight_decay = static_cast<float>(j.at("weight_decay").get<double>());
    h.mezo.stochastic_round = j.at("stochastic_rounding").get<bool>();
    h.storage = parse_storage(path, j.at("storage_dtype").get<std::string>());
    h.cfg = config_from_json(j.at("model"));
    h.base = j.at("base").get<std::string>();
    h.base_checksum = std::stoull(j.at("base_checksum").get<std::string>(), nullptr, 16);
    h.first_step = j.at("first_step").get<int64_t>();
    h.run = j.at("run");
    ZO2_REQUIRE(h.mezo.q >= 1 && h.mezo.perturbation_groups >= 1 && h.first_step >= 0, path,
                ": header has q = ", h.mezo.q, ", perturbation_groups = ", h.mezo.perturbation_groups,
                ", first_step = ", h.first_step);
    ZO2_REQUIRE(j.at("record_bytes").get<int64_t>() == trajectory_record_bytes(h.dirs()), path,
                ": header says records of ", j.at("record_bytes").dump(), " bytes, ", h.dirs(),
                " directions need ", trajectory_record_bytes(h.dirs()));
  } catch (const json::exception& e) {
    throw_error(path, ": trajectory header: ", e.what());
  } catch (const std::logic_error& e) {  // stoull
    throw_error(path, ": trajectory header: bad base_checksum");
  }
  return h;
}

}  // namespace

int64_t trajectory_record_bytes(int64_t dirs) { return 24 + 8 * dirs; }

std::string checksum_hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

TrajectoryRecord trajectory_record(const StepStats& st) {
  TrajectoryRecord r;
  r.step = st.step;
  r.lr = static_cast<float>(st.lr);  // what Update::lr holds
  r.loss = static_cast<float>(st.loss);
  r.g = st.grads;
  r.skipped = st.skipped;
  return r;
}

void TrajectoryWriter::create(const std::string& path, const TrajectoryHeader& header) {
  ZO2_REQUIRE(!std::filesystem::exists(path), path, ": a trajectory log already exists here");
  write_file_atomic(path, header_bytes(header));
}

TrajectoryWriter::TrajectoryWriter(const std::string& path, const TrajectoryHeader& header, int64_t records,
                                   int64_t sync_every)
    : path_(path), header_(header), records_(records), sync_every_(std::max<int64_t>(1, sync_every)) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ZO2_REQUIRE(fd_ >= 0, path, ": cannot open the trajectory log: ", std::strerror(errno));
  // The header's size as written (magic, version, JSON length).
  uint8_t head[16];
  const bool ok = ::pread(fd_, head, sizeof head, 0) == static_cast<ssize_t>(sizeof head);
  ZO2_REQUIRE(ok && std::memcmp(head, kMagic, sizeof kMagic) == 0, path, ": not a zo2 trajectory log");
  header_bytes_ = 16 + static_cast<int64_t>(load<uint32_t>(head + 12)) + 4;
  const off_t end = static_cast<off_t>(header_bytes_ + records * trajectory_record_bytes(header.dirs()));
  struct stat sb;
  ZO2_REQUIRE(::fstat(fd_, &sb) == 0 && sb.st_size >= end, path, ": the log is shorter than its ", records,
              " records");
  if (sb.st_size > end) {
    ZO2_REQUIRE(::ftruncate(fd_, end) == 0 && ::fsync(fd_) == 0, path, ": cannot cut the torn record: ",
                std::strerror(errno));
  }
}

TrajectoryWriter::~TrajectoryWriter() {
  if (fd_ < 0) return;
  if (unsynced_ > 0) ::fdatasync(fd_);
  ::close(fd_);
}

void TrajectoryWriter::append(const TrajectoryRecord& rec) {
  const int64_t step = header_.first_step + records_;
  ZO2_REQUIRE(rec.step == step, path_, ": step ", rec.step, " appended where step ", step, " belongs");
  ZO2_REQUIRE(static_cast<int64_t>(rec.g.size()) == header_.dirs(), path_, ": step ", rec.step, " has ",
              rec.g.size(), " projected gradients, the log holds ", header_.dirs());
  const std::string bytes = record_bytes(rec);
  const off_t at = static_cast<off_t>(header_bytes_ + records_ * trajectory_record_bytes(header_.dirs()));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, at + static_cast<off_t>(done));
    if (w < 0 && errno == EINTR) continue;
    ZO2_REQUIRE(w > 0, path_, ": write of step ", rec.step, " failed: ", std::strerror(errno));
    done += static_cast<size_t>(w);
  }
  ++records_;
  if (++unsynced_ >= sync_every_) sync();
}

void TrajectoryWriter::sync() {
  if (unsynced_ == 0) return;
  ZO2_REQUIRE(::fdatasync(fd_) == 0, path_, ": fsync failed: ", std::strerror(errno));
  unsynced_ = 0;
}

TrajectoryLog read_trajectory(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZO2_REQUIRE(in.good(), path, ": cannot open the trajectory log");
  const std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TrajectoryLog log;
  log.header = parse_header(path, f, &log.header_bytes);
  const int64_t dirs = log.header.dirs(), rb = trajectory_record_bytes(dirs);
  const int64_t payload = static_cast<int64_t>(f.size()) - log.header_bytes;
  const int64_t full = payload / rb, rest = payload % rb;
  for (int64_t i = 0; i < full; ++i) {
    const int64_t step = log.header.first_step + i;
    TrajectoryRecord r;
    const std::string bad = parse_record(f.data() + log.header_bytes + i * rb, dirs, step, &r);
    if (!bad.empty()) {
      // Only the record being appended when the run died can be damaged; one before it means the
      // file itself is.
      ZO2_REQUIRE(i == full - 1 && rest == 0, path, ": the record of step ", step, " ", bad,
                  " and records follow it: the log is corrupt");
      log.dropped = "the last record (step " + std::to_string(step) + ") " + bad;
      break;
    }
    log.records.push_back(std::move(r));
  }
  if (rest != 0)
    log.dropped = std::to_string(rest) + " bytes of a torn record " +
                  (full == 0 ? std::string("before the first step")
                             : "after step " + std::to_string(log.header.first_step + full - 1));
  return log;
}

std::string trajectory_mismatch(const TrajectoryHeader& a, const TrajectoryHeader& b, bool with_base) {
  json ja = header_json(a), jb = header_json(b);
  if (!with_base) ja.erase("base_checksum"), jb.erase("base_checksum");
  for (json* j : {&ja, &jb}) j->erase("base");  // a label: the same base may be at another path
  std::string out;
  auto note = [&](const std::string& name, const json& x, const json& y) {
    if (x == y) return;
    if (!out.empty()) out += "; ";
    out += name + ": log " + (x.is_null() ? "(none)" : x.dump()) + " vs " + (y.is_null() ? "(none)" : y.dump());
  };
  for (const char* group : {"model", "run"}) {
    json x = ja[group], y = jb[group];
    for (auto it = x.begin(); it != x.end(); ++it) note(it.key(), it.value(), y.contains(it.key()) ? y[it.key()] : json());
    for (auto it = y.begin(); it != y.end(); ++it)
      if (!x.contains(it.key())) note(it.key(), json(), it.value());
    ja.erase(group);
    jb.erase(group);
  }
  for (auto it = ja.begin(); it != ja.end(); ++it) note(it.key(), it.value(), jb[it.key()]);
  return out;
}

uint64_t trajectory_id(const TrajectoryHeader& header) {
  const std::string text = header_json(header).dump();
  uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t model_checksum(ZoModel& model) {
  uint64_t h = 0;
  for (uint64_t c : model.checksums()) h = h * 1099511628211ull ^ c;
  return h;
}

void replay(ZoModel& model, const TrajectoryHeader& header, const std::vector<TrajectoryRecord>& records,
            size_t begin, size_t end, at::ScalarType compute_dtype) {
  ZoParams params(compute_dtype);
  for (size_t i = begin; i < end; ++i) {
    const TrajectoryRecord& r = records[i];
    ZO2_REQUIRE(r.step == header.first_step + static_cast<int64_t>(i), "replay: record ", i, " holds step ", r.step,
                ", expected ", header.first_step + static_cast<int64_t>(i));
    const Update up = update_from_grads(header.mezo, r.step, r.g, r.lr);
    ZO2_REQUIRE(up.empty() == r.skipped, "replay: step ", r.step, " is marked ", r.skipped ? "skipped" : "applied",
                " but its projected gradients are ", up.empty() ? "not finite" : "finite");
    apply_update(model, params, up);
  }
}

}  // namespace zo2
