// oneDNN convolutions as XLA FFI custom calls (CPU, float32, NHWC / HWIO).
//
// Built and loaded by genjax/kernels/onednn_build.py (g++, against the system oneDNN,
// version 2.x or 3.x); called from genjax/kernels/conv_onednn.py, which has the custom
// VJP and the padding, and from conv_winograd.py. Five handlers, all with attributes
// stride_h, stride_w, pad_top, pad_left (the bottom and right padding follow from the
// operand and result shapes):
//
//   genjax_onednn_conv_fwd          x [N,H,W,Ci], w [kh,kw,Ci,Co]   -> y  [N,H',W',Co]
//                                   (attribute flip = 1: w is [kh,kw,Co,Ci], used flipped
//                                   and transposed: the input gradient at stride 1)
//   genjax_onednn_conv_bwd_data     g [N,H',W',Co], w [kh,kw,Ci,Co] -> dx [N,H,W,Ci]
//   genjax_onednn_conv_bwd_weights  x [N,H,W,Ci], g [N,H',W',Co]    -> dw [kh,kw,Ci,Co]
//   genjax_onednn_winograd_fwd      x, w -> y   (3x3, stride 1: Winograd F(4x4, 3x3))
//   genjax_onednn_winograd_bwd      x, w, g -> dx, dw   (the same, both gradients)
//
// Activations stay NHWC (what oneDNN's brgemm kernels run on, as PyTorch's channels_last);
// the weights are given to oneDNN in the blocked layout it asks for ("any") and reordered
// on each call: the reorder is a few percent of a 3x3 convolution and lets oneDNN pick
// its fastest kernel.
//
// Primitive descriptors and primitives are cached per shape (creating them JIT-compiles
// kernels). Each call has its own scratchpad and copies (see Buffers), so concurrent
// calls from XLA's threads share nothing mutable.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;

namespace {

struct ConvDims {
  int64_t n, h, w, ci, ho, wo, co, kh, kw, sh, sw, pt, pl, pb, pr;
  bool winograd = false;  // Winograd F(4x4, 3x3) on nChw16c copies of the activations

  std::string Key(char kind) const {
    std::string k(1, kind);
    for (int64_t v : {n, h, w, ci, ho, wo, co, kh, kw, sh, sw, pt, pl, int64_t{winograd}}) {
      k += "," + std::to_string(v);
    }
    return k;
  }
  dnnl::algorithm Algorithm() const {
    return winograd ? dnnl::algorithm::convolution_winograd
                    : dnnl::algorithm::convolution_direct;
  }
  // The activations as the primitives see them: NHWC as given, or blocked for Winograd.
  memory::desc Src() const { return Activation(ci, h, w, winograd); }
  memory::desc Dst() const { return Activation(co, ho, wo, winograd); }
  memory::desc UserSrc() const { return Activation(ci, h, w, false); }
  memory::desc UserDst() const { return Activation(co, ho, wo, false); }
  memory::desc UserWeights() const {
    return {{co, ci, kh, kw}, memory::data_type::f32, memory::format_tag::hwio};
  }
  memory::desc AnyWeights() const {
    return {{co, ci, kh, kw}, memory::data_type::f32, memory::format_tag::any};
  }

 private:
  memory::desc Activation(int64_t c, int64_t rows, int64_t cols, bool blocked) const {
    return {{n, c, rows, cols}, memory::data_type::f32,
            blocked ? memory::format_tag::nChw16c : memory::format_tag::nhwc};
  }
};

ConvDims MakeDims(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
                  ffi::Span<const int64_t> y, int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
  ConvDims d{x[0], x[1], x[2], x[3], y[1], y[2], y[3], w[0], w[1], sh, sw, pt, pl, 0, 0};
  d.pb = (d.ho - 1) * sh + d.kh - d.h - pt;
  d.pr = (d.wo - 1) * sw + d.kw - d.w - pl;
  return d;
}

dnnl::engine& Engine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// oneDNN 3 dropped the operation descriptors of version 2: one constructor per version.
dnnl::convolution_forward::primitive_desc ForwardPd(const ConvDims& d) {
  const auto attr = UserScratchpad();
#if DNNL_VERSION_MAJOR >= 3
  return {Engine(), dnnl::prop_kind::forward_training, d.Algorithm(),
          d.Src(), d.AnyWeights(), d.Dst(), {d.sh, d.sw}, {d.pt, d.pl}, {d.pb, d.pr}, attr};
#else
  dnnl::convolution_forward::desc od(dnnl::prop_kind::forward_training, d.Algorithm(),
                                     d.Src(), d.AnyWeights(), d.Dst(), {d.sh, d.sw},
                                     {d.pt, d.pl}, {d.pb, d.pr});
  return {od, attr, Engine()};
#endif
}

// Backward is convolution_backward_data or convolution_backward_weights: the same
// constructor arguments, the forward primitive descriptor as the hint.
template <typename Backward>
typename Backward::primitive_desc BackwardPd(const ConvDims& d) {
  const auto attr = UserScratchpad();
  const auto hint = ForwardPd(d);
#if DNNL_VERSION_MAJOR >= 3
  return {Engine(), d.Algorithm(), d.Src(), d.AnyWeights(), d.Dst(),
          {d.sh, d.sw}, {d.pt, d.pl}, {d.pb, d.pr}, hint, attr};
#else
  typename Backward::desc od(d.Algorithm(), d.Src(), d.AnyWeights(), d.Dst(), {d.sh, d.sw},
                             {d.pt, d.pl}, {d.pb, d.pr});
  return {od, attr, Engine(), hint};
#endif
}

// A convolution primitive, the weight layout it wants and the scratchpad it needs.
struct Prepared {
  dnnl::primitive conv;
  memory::desc weights;  // oneDNN's layout of the weights (or of their gradient)
  memory::desc scratchpad;
};

// One cache per call site (each passes its own lambda type); keys name the shape.
template <typename MakePd>
std::shared_ptr<const Prepared> Cached(const std::string& key, MakePd make_pd) {
  static std::mutex mu;
  static auto* cache = new std::unordered_map<std::string, std::shared_ptr<const Prepared>>();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  auto made = make_pd();  // outside the lock: creating a primitive compiles its kernel
  std::lock_guard<std::mutex> lock(mu);
  return cache->emplace(key, std::make_shared<const Prepared>(std::move(made))).first->second;
}

constexpr size_t kAlign = 64;

size_t Aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// The buffers of one call (scratchpads, blocked copies), as memory objects: allocated by
// oneDNN and freed with them, or carved from a workspace that XLA allocated for the call
// (a result of the Winograd custom calls). The Winograd calls need the workspace: their
// scratchpads are 7-35 MB at the CIFAR UNet's shapes, and allocated on every call their
// pages were faulted in each time, which cost more than Winograd's backward pass saved.
class Buffers {
 public:
  Buffers() = default;
  Buffers(void* workspace, size_t bytes) {
    const auto start = reinterpret_cast<uintptr_t>(workspace);
    base_ = reinterpret_cast<char*>(Aligned(start));
    capacity_ = bytes - std::min(bytes, static_cast<size_t>(Aligned(start) - start));
  }
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;

  memory New(const memory::desc& desc) {
    if (base_ == nullptr) return memory(desc, Engine());
    const size_t bytes = std::max<size_t>(desc.get_size(), 1);
    if (used_ + bytes > capacity_) {
      throw std::runtime_error("workspace smaller than its computed size (a bug)");
    }
    memory out(desc, Engine(), base_ + used_);
    used_ += Aligned(bytes);
    return out;
  }

 private:
  char* base_ = nullptr;
  size_t capacity_ = 0, used_ = 0;
};

// Primitives for the convolution d (direct or Winograd, as d says), cached per shape.
std::shared_ptr<const Prepared> PreparedForward(const ConvDims& d) {
  return Cached(d.Key('f'), [&] {
    auto pd = ForwardPd(d);
    return Prepared{dnnl::convolution_forward(pd), pd.weights_desc(), pd.scratchpad_desc()};
  });
}

std::shared_ptr<const Prepared> PreparedBackwardData(const ConvDims& d) {
  return Cached(d.Key('d'), [&] {
    auto pd = BackwardPd<dnnl::convolution_backward_data>(d);
    return Prepared{dnnl::convolution_backward_data(pd), pd.weights_desc(),
                    pd.scratchpad_desc()};
  });
}

// Copies `from` into `to` (a reorder between their layouts), and waits.
void CopyInto(const memory& from, const memory& to) {
  dnnl::stream stream(Engine());
  dnnl::reorder(from, to).execute(stream, const_cast<memory&>(from), const_cast<memory&>(to));
  stream.wait();
}

// `from` copied into a new buffer of layout `to`.
memory Reordered(const memory& from, const memory::desc& to, Buffers& buffers) {
  memory out = buffers.New(to);
  CopyInto(from, out);
  return out;
}

// Runs `conv` with `args` plus a scratchpad from `buffers` on a stream of its own, and waits.
void Execute(const Prepared& p, Buffers& buffers, std::unordered_map<int, memory> args) {
  dnnl::stream stream(Engine());
  args.insert({DNNL_ARG_SCRATCHPAD, buffers.New(p.scratchpad)});
  p.conv.execute(stream, args);
  stream.wait();
}

// Weights in oneDNN's layout: the user's HWIO buffer itself, or a reordered copy.
memory WeightsFor(const Prepared& p, const ConvDims& d, float* hwio, Buffers& buffers) {
  memory user(d.UserWeights(), Engine(), hwio);
  if (p.weights == user.get_desc()) return user;
  return Reordered(user, p.weights, buffers);
}

// The forward primitive's weights in oneDNN's layout, from w [kh, kw, Ci, Co], copied one
// tap at a time: nine strided [Co, Ci] reorders into the taps of the blocked layout ran
// 2x faster than one reorder of the whole HWIO array (oneDNN 2.6, 512 channels: 1.3 vs
// 2.5 ms, ~10% of the convolution). flip = true gives the weights of the transposed
// stride-1 convolution, the input gradient: w is then [kh, kw, Co', Ci'] of the forward
// convolution (d describes the transposed one: its inputs are w's outputs), and tap
// (i, j) is w's tap (kh-1-i, kw-1-j) with its channel axes swapped.
memory TapwiseWeights(const Prepared& p, const ConvDims& d, float* w, bool flip,
                      Buffers& buffers) {
  memory blocked = buffers.New(p.weights);
  dnnl::stream stream(Engine());
  // One tap of w as an [O = d.co, I = d.ci, 1, 1] array.
  const memory::dims strides = flip ? memory::dims{d.ci, 1, 1, 1} : memory::dims{1, d.co, 1, 1};
  const memory::desc tap({d.co, d.ci, 1, 1}, memory::data_type::f32, strides);
  for (int64_t i = 0; i < d.kh; ++i) {
    for (int64_t j = 0; j < d.kw; ++j) {
      const int64_t source = flip ? (d.kh - 1 - i) * d.kw + (d.kw - 1 - j) : i * d.kw + j;
      memory src(tap, Engine(), w + source * d.ci * d.co);
      memory dst(p.weights.submemory_desc({d.co, d.ci, 1, 1}, {0, 0, i, j}), Engine(),
                 blocked.get_data_handle());
      dnnl::reorder(src, dst).execute(stream, src, dst);
    }
  }
  stream.wait();
  return blocked;
}

template <typename Fn>
ffi::Error Guarded(Fn fn) {
  try {
    fn();
    return ffi::Error::Success();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, e.what());
  }
}

using F32 = ffi::Buffer<ffi::F32>;

// flip = 1: convolve with w flipped and channel-swapped (TapwiseWeights), the input
// gradient of a stride-1 convolution by w.
ffi::Error ConvForward(F32 x, F32 w, ffi::ResultBuffer<ffi::F32> y, int64_t stride_h,
                       int64_t stride_w, int64_t pad_top, int64_t pad_left, int64_t flip) {
  return Guarded([&] {
    const ConvDims d = MakeDims(x.dimensions(), w.dimensions(), y->dimensions(), stride_h,
                                stride_w, pad_top, pad_left);
    auto p = PreparedForward(d);
    Buffers buffers;
    memory weights = TapwiseWeights(*p, d, w.typed_data(), flip != 0, buffers);
    Execute(*p, buffers, {{DNNL_ARG_SRC, memory(d.UserSrc(), Engine(), x.typed_data())},
                          {DNNL_ARG_WEIGHTS, weights},
                          {DNNL_ARG_DST, memory(d.UserDst(), Engine(), y->typed_data())}});
  });
}

ffi::Error ConvBackwardData(F32 g, F32 w, ffi::ResultBuffer<ffi::F32> dx, int64_t stride_h,
                            int64_t stride_w, int64_t pad_top, int64_t pad_left) {
  return Guarded([&] {
    const ConvDims d = MakeDims(dx->dimensions(), w.dimensions(), g.dimensions(), stride_h,
                                stride_w, pad_top, pad_left);
    auto p = PreparedBackwardData(d);
    Buffers buffers;
    Execute(*p, buffers, {{DNNL_ARG_DIFF_DST, memory(d.UserDst(), Engine(), g.typed_data())},
                          {DNNL_ARG_WEIGHTS, WeightsFor(*p, d, w.typed_data(), buffers)},
                          {DNNL_ARG_DIFF_SRC, memory(d.UserSrc(), Engine(), dx->typed_data())}});
  });
}

std::shared_ptr<const Prepared> PreparedWeightGradient(const ConvDims& d) {
  return Cached(d.Key('w'), [&] {
    auto pd = BackwardPd<dnnl::convolution_backward_weights>(d);
    return Prepared{dnnl::convolution_backward_weights(pd), pd.diff_weights_desc(),
                    pd.scratchpad_desc()};
  });
}

// The weight gradient of the convolution d into dw [kh, kw, Ci, Co], from src and diff_dst
// in the layouts d asks for.
void WeightGradient(const ConvDims& d, const memory& src, const memory& diff_dst, float* dw,
                    Buffers& buffers) {
  auto p = PreparedWeightGradient(d);
  memory user(d.UserWeights(), Engine(), dw);
  const bool reorder = p->weights != user.get_desc();
  memory out = reorder ? buffers.New(p->weights) : user;
  Execute(*p, buffers,
          {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, out}});
  if (reorder) CopyInto(out, user);
}

ffi::Error ConvBackwardWeights(F32 x, F32 g, ffi::ResultBuffer<ffi::F32> dw, int64_t stride_h,
                               int64_t stride_w, int64_t pad_top, int64_t pad_left) {
  return Guarded([&] {
    const ConvDims d = MakeDims(x.dimensions(), dw->dimensions(), g.dimensions(), stride_h,
                                stride_w, pad_top, pad_left);
    Buffers buffers;
    WeightGradient(d, memory(d.UserSrc(), Engine(), x.typed_data()),
                   memory(d.UserDst(), Engine(), g.typed_data()), dw->typed_data(), buffers);
  });
}

// Winograd F(4x4, 3x3) (oneDNN's jit_wino_4x3, AVX-512): runs on nChw16c activations,
// so the handlers copy them in and out of that layout (each copy is a few percent of
// the convolution: benchmarks/README.md). The backward handler computes both gradients
// from one blocked copy of g and of x. The copies, the blocked weights and oneDNN's
// scratchpads (7-35 MB at the CIFAR UNet's shapes) live in a workspace that XLA
// allocates as an extra result of the call, of the size WinogradWorkspaceBytes gives.

// Bytes of workspace the Winograd handlers carve their buffers from: what each New() of
// the handler below takes, in order, each rounded up to kAlign, plus kAlign to align
// the start. Creates (and caches) the primitives, so it also fails where Winograd does.
size_t WinogradWorkspaceBytes(const ConvDims& d, bool backward) {
  size_t total = kAlign;
  if (!backward) {
    auto p = PreparedForward(d);
    for (const memory::desc& m : {d.Src(), d.Dst(), p->weights, p->scratchpad}) {
      total += Aligned(std::max<size_t>(m.get_size(), 1));
    }
    return total;
  }
  auto pd = PreparedBackwardData(d);
  auto pw = PreparedWeightGradient(d);
  for (const memory::desc& m : {d.Dst(), d.Src(), pd->weights, pd->scratchpad, d.Src(),
                                pw->weights, pw->scratchpad}) {
    total += Aligned(std::max<size_t>(m.get_size(), 1));
  }
  return total;
}

ConvDims WinogradDims(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
                      ffi::Span<const int64_t> y, int64_t pad_top, int64_t pad_left) {
  ConvDims d = MakeDims(x, w, y, 1, 1, pad_top, pad_left);
  d.winograd = true;
  return d;
}

using Workspace = ffi::ResultBuffer<ffi::U8>;

ffi::Error WinogradForward(F32 x, F32 w, ffi::ResultBuffer<ffi::F32> y, Workspace workspace,
                           int64_t stride_h, int64_t stride_w, int64_t pad_top,
                           int64_t pad_left) {
  return Guarded([&] {
    const ConvDims d = WinogradDims(x.dimensions(), w.dimensions(), y->dimensions(), pad_top,
                                    pad_left);
    auto p = PreparedForward(d);
    Buffers buffers(workspace->untyped_data(), workspace->size_bytes());
    memory xb = Reordered(memory(d.UserSrc(), Engine(), x.typed_data()), d.Src(), buffers);
    memory yb = buffers.New(d.Dst());
    Execute(*p, buffers, {{DNNL_ARG_SRC, xb},
                          {DNNL_ARG_WEIGHTS, WeightsFor(*p, d, w.typed_data(), buffers)},
                          {DNNL_ARG_DST, yb}});
    CopyInto(yb, memory(d.UserDst(), Engine(), y->typed_data()));
  });
}

ffi::Error WinogradBackward(F32 x, F32 w, F32 g, ffi::ResultBuffer<ffi::F32> dx,
                            ffi::ResultBuffer<ffi::F32> dw, Workspace workspace,
                            int64_t stride_h, int64_t stride_w, int64_t pad_top,
                            int64_t pad_left) {
  return Guarded([&] {
    const ConvDims d = WinogradDims(x.dimensions(), w.dimensions(), g.dimensions(), pad_top,
                                    pad_left);
    auto p = PreparedBackwardData(d);
    Buffers buffers(workspace->untyped_data(), workspace->size_bytes());
    memory gb = Reordered(memory(d.UserDst(), Engine(), g.typed_data()), d.Dst(), buffers);
    memory dxb = buffers.New(d.Src());
    Execute(*p, buffers,
            {{DNNL_ARG_DIFF_DST, gb},
             {DNNL_ARG_WEIGHTS, WeightsFor(*p, d, w.typed_data(), buffers)},
             {DNNL_ARG_DIFF_SRC, dxb}});
    CopyInto(dxb, memory(d.UserSrc(), Engine(), dx->typed_data()));
    memory xb = Reordered(memory(d.UserSrc(), Engine(), x.typed_data()), d.Src(), buffers);
    WeightGradient(d, xb, gb, dw->typed_data(), buffers);
  });
}

}  // namespace

// Two float32 operands, one float32 result, the four attributes.
#define GENJAX_CONV_BINDING                                                               \
  ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<F32>().Attr<int64_t>("stride_h")            \
      .Attr<int64_t>("stride_w").Attr<int64_t>("pad_top").Attr<int64_t>("pad_left")

XLA_FFI_DEFINE_HANDLER_SYMBOL(genjax_onednn_conv_fwd, ConvForward,
                              GENJAX_CONV_BINDING.Attr<int64_t>("flip"));
XLA_FFI_DEFINE_HANDLER_SYMBOL(genjax_onednn_conv_bwd_data, ConvBackwardData,
                              GENJAX_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(genjax_onednn_conv_bwd_weights, ConvBackwardWeights,
                              GENJAX_CONV_BINDING);
// x, w -> y, workspace.
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    genjax_onednn_winograd_fwd, WinogradForward,
    ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<F32>().Ret<ffi::Buffer<ffi::U8>>()
        .Attr<int64_t>("stride_h").Attr<int64_t>("stride_w").Attr<int64_t>("pad_top")
        .Attr<int64_t>("pad_left"));
// x, w, g -> dx, dw, workspace.
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    genjax_onednn_winograd_bwd, WinogradBackward,
    ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Arg<F32>().Ret<F32>().Ret<F32>()
        .Ret<ffi::Buffer<ffi::U8>>().Attr<int64_t>("stride_h").Attr<int64_t>("stride_w")
        .Attr<int64_t>("pad_top").Attr<int64_t>("pad_left"));

// The workspace size of a Winograd call, for the Python side to allocate it: x, w and y
// are the dimensions of the forward convolution's NHWC input, HWIO weights and output.
// Returns -1 where oneDNN has no Winograd kernel for this convolution (the caller then
// uses the direct one).
extern "C" int64_t genjax_onednn_winograd_workspace_bytes(int64_t backward, const int64_t* x,
                                                          const int64_t* w, const int64_t* y,
                                                          int64_t pad_top, int64_t pad_left) {
  try {
    const ConvDims d = WinogradDims(ffi::Span<const int64_t>(x, 4),
                                    ffi::Span<const int64_t>(w, 4),
                                    ffi::Span<const int64_t>(y, 4), pad_top, pad_left);
    return static_cast<int64_t>(WinogradWorkspaceBytes(d, backward != 0));
  } catch (const std::exception&) {
    return -1;
  }
}
