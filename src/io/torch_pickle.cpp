#include "io/torch_pickle.h"

#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "common/error.h"

namespace zo2 {

namespace {

enum class Kind { None, Bool, Int, Str, Tuple, Dict, Global, Storage, Tensor };
const char* kind_name(Kind k) {
  static const char* names[] = {"None", "bool", "int", "str", "tuple", "dict", "global", "storage", "tensor"};
  return names[static_cast<int>(k)];
}

struct Obj;
using ObjP = std::shared_ptr<Obj>;
struct Obj {
  Kind kind;
  int64_t i = 0;            // Int, Bool, Storage numel
  std::string s;            // Str, Global ("module.name"), Storage key
  std::vector<ObjP> items;  // Tuple; Dict as key, value, key, value, ...
  bool ordered = false;     // Dict made by collections.OrderedDict()
  at::ScalarType dtype = at::kFloat;  // Storage
  PickledTensor tensor;     // Tensor (name unset)
  int depth = 1;            // nesting, bounded so that no input builds deep recursion
};

constexpr int kMaxDepth = 32;
constexpr int64_t kMaxDim = int64_t(1) << 62;

const std::map<std::string, at::ScalarType>& storage_types() {
  static const std::map<std::string, at::ScalarType> m = {
      {"torch.FloatStorage", at::kFloat},   {"torch.HalfStorage", at::kHalf}, {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.DoubleStorage", at::kDouble}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar}, {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
  };
  return m;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  ~Unpickler() {
    for (const ObjP& o : all_) o->items.clear();  // memo references can form cycles; break them
  }
  ObjP run();

 private:
  template <class... A>
  [[noreturn]] void fail(const A&... a) {
    throw_error(path_, ": unreadable pickle (data.pkl byte ", op_pos_, "): ", a...);
  }
  void need(size_t k) {
    if (k > n_ - pos_) fail("truncated");
  }
  uint64_t read_le(int k) {
    need(k);
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; --i) v = (v << 8) | p_[pos_ + i];
    pos_ += k;
    return v;
  }
  std::string read_line() {
    size_t e = pos_;
    while (e < n_ && p_[e] != '\n' && e - pos_ < 256) ++e;
    if (e >= n_ || p_[e] != '\n') fail("unterminated GLOBAL name");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), e - pos_);
    pos_ = e + 1;
    return s;
  }
  ObjP make(Kind k) {
    all_.push_back(std::make_shared<Obj>());
    all_.back()->kind = k;
    return all_.back();
  }
  ObjP make_int(int64_t v) {
    ObjP o = make(Kind::Int);
    o->i = v;
    return o;
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  const ObjP& top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  ObjP pop() {
    ObjP o = top();
    stack_.pop_back();
    return o;
  }
  std::vector<ObjP> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    std::vector<ObjP> v(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return v;
  }
  void set_depth(Obj& o, const ObjP& child) {
    o.depth = std::max(o.depth, child->depth + 1);
    if (o.depth > kMaxDepth) fail("nesting deeper than ", kMaxDepth);
  }
  ObjP tuple(std::vector<ObjP> items) {
    ObjP t = make(Kind::Tuple);
    for (const ObjP& c : items) set_depth(*t, c);
    t->items = std::move(items);
    return t;
  }
  void set_item(const ObjP& d, const ObjP& k, const ObjP& v) {
    if (d->kind != Kind::Dict) fail("SETITEM on a ", kind_name(d->kind));
    set_depth(*d, k);
    set_depth(*d, v);
    d->items.push_back(k);
    d->items.push_back(v);
  }
  int64_t as_int(const ObjP& o, const char* what) {
    if (o->kind != Kind::Int) fail(what, " is a ", kind_name(o->kind), ", expected an int");
    if (o->i < 0 || o->i > kMaxDim) fail(what, " ", o->i, " is out of range");
    return o->i;
  }
  std::vector<int64_t> int_tuple(const ObjP& o, const char* what) {
    if (o->kind != Kind::Tuple) fail(what, " is a ", kind_name(o->kind), ", expected a tuple");
    std::vector<int64_t> v;
    for (const ObjP& c : o->items) v.push_back(as_int(c, what));
    return v;
  }
  ObjP persistent_load(const ObjP& pid);
  ObjP reduce(const ObjP& fn, const ObjP& args);
  ObjP rebuild_tensor(const std::vector<ObjP>& a);

  const uint8_t* p_;
  size_t n_, pos_ = 0, op_pos_ = 0;
  const std::string& path_;
  std::vector<ObjP> stack_, all_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ObjP> memo_;
};

ObjP Unpickler::persistent_load(const ObjP& pid) {
  const auto& a = pid->items;
  if (pid->kind != Kind::Tuple || a.size() != 5 || a[0]->kind != Kind::Str || a[0]->s != "storage" ||
      a[1]->kind != Kind::Global || a[2]->kind != Kind::Str || a[3]->kind != Kind::Str)
    fail("persistent id is not ('storage', torch.<T>Storage, key, location, numel)");
  auto t = storage_types().find(a[1]->s);
  if (t == storage_types().end()) fail("persistent id names ", a[1]->s, ", not a storage type");
  ObjP s = make(Kind::Storage);
  s->dtype = t->second;
  s->s = a[2]->s;
  s->i = as_int(a[4], "storage size");
  return s;
}

ObjP Unpickler::rebuild_tensor(const std::vector<ObjP>& a) {
  if (a.size() != 6 && a.size() != 7) fail("_rebuild_tensor_v2 takes 6 or 7 arguments, got ", a.size());
  if (a[0]->kind != Kind::Storage) fail("_rebuild_tensor_v2: first argument is a ", kind_name(a[0]->kind));
  if (a[4]->kind != Kind::Bool) fail("_rebuild_tensor_v2: requires_grad is a ", kind_name(a[4]->kind));
  if (!(a[5]->kind == Kind::None || (a[5]->kind == Kind::Dict && a[5]->items.empty())))
    fail("_rebuild_tensor_v2: backward hooks are not supported");
  ObjP o = make(Kind::Tensor);
  PickledTensor& t = o->tensor;
  t.storage = a[0]->s;
  t.dtype = a[0]->dtype;
  t.storage_numel = a[0]->i;
  t.offset = as_int(a[1], "storage offset");
  t.sizes = int_tuple(a[2], "size");
  t.strides = int_tuple(a[3], "stride");
  if (t.sizes.size() != t.strides.size()) fail("size and stride have different lengths");
  // Every element the view can reach must lie inside the storage.
  __int128 last = t.offset, numel = 1;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    numel *= t.sizes[d];
    if (t.sizes[d] > 0) last += static_cast<__int128>(t.sizes[d] - 1) * t.strides[d];
  }
  if (numel > 0 && last >= t.storage_numel)
    fail("tensor view (offset ", t.offset, ", size ", at::IntArrayRef(t.sizes), ", stride ",
         at::IntArrayRef(t.strides), ") reaches past its storage of ", t.storage_numel, " elements");
  return o;
}

ObjP Unpickler::reduce(const ObjP& fn, const ObjP& args) {
  if (fn->kind != Kind::Global || args->kind != Kind::Tuple) fail("REDUCE needs a global and a tuple");
  if (fn->s == "collections.OrderedDict") {
    if (!args->items.empty()) fail("OrderedDict with constructor arguments");
    ObjP d = make(Kind::Dict);
    d->ordered = true;
    return d;
  }
  if (fn->s == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args->items);
  fail("cannot call ", fn->s);
}

ObjP Unpickler::run() {
  while (true) {
    op_pos_ = pos_;
    need(1);
    const uint8_t op = p_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t v = read_le(1);
        if (v < 2 || v > 5) fail("pickle protocol ", v);
        break;
      }
      case '}': stack_.push_back(make(Kind::Dict)); break;  // EMPTY_DICT
      case '(': marks_.push_back(stack_.size()); break;    // MARK
      case 'X': {                                          // BINUNICODE
        const uint64_t len = read_le(4);
        need(len);
        ObjP s = make(Kind::Str);
        s->s.assign(reinterpret_cast<const char*>(p_ + pos_), len);
        pos_ += len;
        stack_.push_back(s);
        break;
      }
      case 'q':  // BINPUT
      case 'r':  // LONG_BINPUT
        memo_[static_cast<uint32_t>(read_le(op == 'q' ? 1 : 4))] = top();
        break;
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        auto it = memo_.find(static_cast<uint32_t>(read_le(op == 'h' ? 1 : 4)));
        if (it == memo_.end()) fail("memo entry is not defined");
        stack_.push_back(it->second);
        break;
      }
      case 'c': {  // GLOBAL
        std::string module = read_line();
        std::string name = read_line();
        ObjP g = make(Kind::Global);
        g->s = module + "." + name;
        if (g->s != "collections.OrderedDict" && g->s != "torch._utils._rebuild_tensor_v2" &&
            !storage_types().count(g->s))
          fail("global ", g->s, " is not part of a state dict");
        stack_.push_back(g);
        break;
      }
      case 'Q': {  // BINPERSID
        ObjP pid = pop();
        stack_.push_back(persistent_load(pid));
        break;
      }
      case 'K': stack_.push_back(make_int(static_cast<int64_t>(read_le(1)))); break;  // BININT1
      case 'M': stack_.push_back(make_int(static_cast<int64_t>(read_le(2)))); break;  // BININT2
      case 'J': stack_.push_back(make_int(static_cast<int32_t>(read_le(4)))); break;  // BININT
      case 0x8a: {                                                                  // LONG1
        const int k = static_cast<int>(read_le(1));
        if (k > 8) fail("integer of ", k, " bytes");
        uint64_t v = read_le(k);
        if (k > 0 && k < 8 && (v >> (8 * k - 1)) & 1) v |= ~uint64_t(0) << (8 * k);  // sign-extend
        stack_.push_back(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 't': stack_.push_back(tuple(pop_mark())); break;  // TUPLE
      case ')': stack_.push_back(tuple({})); break;          // EMPTY_TUPLE
      case 0x85:                                             // TUPLE1
      case 0x86:                                             // TUPLE2
      case 0x87: {                                           // TUPLE3
        std::vector<ObjP> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        stack_.push_back(tuple(std::move(items)));
        break;
      }
      case 0x88:  // NEWTRUE
      case 0x89: {  // NEWFALSE
        ObjP b = make(Kind::Bool);
        b->i = op == 0x88;
        stack_.push_back(b);
        break;
      }
      case 'N': stack_.push_back(make(Kind::None)); break;
      case 'R': {  // REDUCE
        ObjP args = pop();
        ObjP fn = pop();
        stack_.push_back(reduce(fn, args));
        break;
      }
      case 's': {  // SETITEM
        ObjP v = pop();
        ObjP k = pop();
        set_item(top(), k, v);
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<ObjP> kv = pop_mark();
        if (kv.size() % 2) fail("SETITEMS with an odd number of items");
        const ObjP d = top();
        for (size_t i = 0; i < kv.size(); i += 2) set_item(d, kv[i], kv[i + 1]);
        break;
      }
      case '.': return pop();  // STOP
      default: fail("opcode 0x", std::hex, int(op), " is outside the state-dict subset");
    }
  }
}

}  // namespace

PickledStateDict parse_state_dict_pickle(const uint8_t* data, size_t size, const std::string& path) {
  Unpickler u(data, size, path);
  ObjP root = u.run();
  ZO2_REQUIRE(root->kind == Kind::Dict, path, ": data.pkl holds a ", kind_name(root->kind),
              ", not a state dict");
  PickledStateDict sd;
  sd.ordered_dict = root->ordered;
  std::set<std::string> seen;
  for (size_t i = 0; i < root->items.size(); i += 2) {
    const Obj& k = *root->items[i];
    const Obj& v = *root->items[i + 1];
    ZO2_REQUIRE(k.kind == Kind::Str, path, ": state dict key ", i / 2, " is a ", kind_name(k.kind));
    ZO2_REQUIRE(v.kind == Kind::Tensor, path, ": tensor ", k.s, ": value is a ", kind_name(v.kind));
    ZO2_REQUIRE(seen.insert(k.s).second, path, ": tensor ", k.s, " appears twice");
    sd.tensors.push_back(v.tensor);
    sd.tensors.back().name = k.s;
  }
  return sd;
}

}  // namespace zo2
