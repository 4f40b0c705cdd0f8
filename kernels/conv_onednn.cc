// oneDNN convolutions as XLA FFI custom calls (CPU, float32, NHWC / HWIO).
//
// Built and loaded by genjax/kernels/onednn_build.py (g++, against the system oneDNN,
// version 2.x or 3.x); called from genjax/kernels/conv_onednn.py, which has the custom
// VJP and the padding. Three handlers, all with attributes stride_h, stride_w, pad_top,
// pad_left (the bottom and right padding follow from the operand and result shapes):
//
//   genjax_onednn_conv_fwd          x [N,H,W,Ci], w [kh,kw,Ci,Co]   -> y  [N,H',W',Co]
//                                   (attribute flip = 1: w is [kh,kw,Co,Ci], used flipped
//                                   and transposed: the input gradient at stride 1)
//   genjax_onednn_conv_bwd_data     g [N,H',W',Co], w [kh,kw,Ci,Co] -> dx [N,H,W,Ci]
//   genjax_onednn_conv_bwd_weights  x [N,H,W,Ci], g [N,H',W',Co]    -> dw [kh,kw,Ci,Co]
//
// Activations stay NHWC (what oneDNN's brgemm kernels run on, as PyTorch's channels_last);
// the weights are given to oneDNN in the blocked layout it asks for ("any") and reordered
// on each call: the reorder is a few percent of a 3x3 convolution and lets oneDNN pick
// its fastest kernel.
//
// Primitive descriptors and primitives are cached per shape (creating them JIT-compiles
// kernels). Each call brings its own scratchpad, so concurrent calls from XLA's threads
// share nothing mutable.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;

namespace {

struct ConvDims {
  int64_t n, h, w, ci, ho, wo, co, kh, kw, sh, sw, pt, pl, pb, pr;

  std::string Key(char kind) const {
    std::string k(1, kind);
    for (int64_t v : {n, h, w, ci, ho, wo, co, kh, kw, sh, sw, pt, pl}) {
      k += "," + std::to_string(v);
    }
    return k;
  }
  memory::desc Src() const {
    return {{n, ci, h, w}, memory::data_type::f32, memory::format_tag::nhwc};
  }
  memory::desc Dst() const {
    return {{n, co, ho, wo}, memory::data_type::f32, memory::format_tag::nhwc};
  }
  memory::desc UserWeights() const {
    return {{co, ci, kh, kw}, memory::data_type::f32, memory::format_tag::hwio};
  }
  memory::desc AnyWeights() const {
    return {{co, ci, kh, kw}, memory::data_type::f32, memory::format_tag::any};
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
  return {Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
          d.Src(), d.AnyWeights(), d.Dst(), {d.sh, d.sw}, {d.pt, d.pl}, {d.pb, d.pr}, attr};
#else
  dnnl::convolution_forward::desc od(dnnl::prop_kind::forward_training,
                                     dnnl::algorithm::convolution_direct, d.Src(), d.AnyWeights(),
                                     d.Dst(), {d.sh, d.sw}, {d.pt, d.pl}, {d.pb, d.pr});
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
  return {Engine(), dnnl::algorithm::convolution_direct, d.Src(), d.AnyWeights(), d.Dst(),
          {d.sh, d.sw}, {d.pt, d.pl}, {d.pb, d.pr}, hint, attr};
#else
  typename Backward::desc od(dnnl::algorithm::convolution_direct, d.Src(), d.AnyWeights(),
                             d.Dst(), {d.sh, d.sw}, {d.pt, d.pl}, {d.pb, d.pr});
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

// Runs `conv` with `args` plus a fresh scratchpad on a stream of its own, and waits.
void Execute(const Prepared& p, std::unordered_map<int, memory> args) {
  dnnl::stream stream(Engine());
  args.insert({DNNL_ARG_SCRATCHPAD, memory(p.scratchpad, Engine())});
  p.conv.execute(stream, args);
  stream.wait();
}

// Weights in oneDNN's layout: the user's HWIO buffer itself, or a reordered copy.
memory WeightsFor(const Prepared& p, const ConvDims& d, float* hwio) {
  memory user(d.UserWeights(), Engine(), hwio);
  if (p.weights == user.get_desc()) return user;
  memory blocked(p.weights, Engine());
  dnnl::stream stream(Engine());
  dnnl::reorder(user, blocked).execute(stream, user, blocked);
  stream.wait();
  return blocked;
}

// The forward primitive's weights in oneDNN's layout, from w [kh, kw, Ci, Co], copied one
// tap at a time: nine strided [Co, Ci] reorders into the taps of the blocked layout ran
// 2x faster than one reorder of the whole HWIO array (oneDNN 2.6, 512 channels: 1.3 vs
// 2.5 ms, ~10% of the convolution). flip = true gives the weights of the transposed
// stride-1 convolution, the input gradient: w is then [kh, kw, Co', Ci'] of the forward
// convolution (d describes the transposed one: its inputs are w's outputs), and tap
// (i, j) is w's tap (kh-1-i, kw-1-j) with its channel axes swapped.
memory TapwiseWeights(const Prepared& p, const ConvDims& d, float* w, bool flip) {
  memory blocked(p.weights, Engine());
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
    auto p = Cached(d.Key('f'), [&] {
      auto pd = ForwardPd(d);
      return Prepared{dnnl::convolution_forward(pd), pd.weights_desc(), pd.scratchpad_desc()};
    });
    memory weights = TapwiseWeights(*p, d, w.typed_data(), flip != 0);
    Execute(*p, {{DNNL_ARG_SRC, memory(d.Src(), Engine(), x.typed_data())},
                 {DNNL_ARG_WEIGHTS, weights},
                 {DNNL_ARG_DST, memory(d.Dst(), Engine(), y->typed_data())}});
  });
}

ffi::Error ConvBackwardData(F32 g, F32 w, ffi::ResultBuffer<ffi::F32> dx, int64_t stride_h,
                            int64_t stride_w, int64_t pad_top, int64_t pad_left) {
  return Guarded([&] {
    const ConvDims d = MakeDims(dx->dimensions(), w.dimensions(), g.dimensions(), stride_h,
                                stride_w, pad_top, pad_left);
    auto p = Cached(d.Key('d'), [&] {
      auto pd = BackwardPd<dnnl::convolution_backward_data>(d);
      return Prepared{dnnl::convolution_backward_data(pd), pd.weights_desc(),
                      pd.scratchpad_desc()};
    });
    Execute(*p, {{DNNL_ARG_DIFF_DST, memory(d.Dst(), Engine(), g.typed_data())},
                 {DNNL_ARG_WEIGHTS, WeightsFor(*p, d, w.typed_data())},
                 {DNNL_ARG_DIFF_SRC, memory(d.Src(), Engine(), dx->typed_data())}});
  });
}

ffi::Error ConvBackwardWeights(F32 x, F32 g, ffi::ResultBuffer<ffi::F32> dw, int64_t stride_h,
                               int64_t stride_w, int64_t pad_top, int64_t pad_left) {
  return Guarded([&] {
    const ConvDims d = MakeDims(x.dimensions(), dw->dimensions(), g.dimensions(), stride_h,
                                stride_w, pad_top, pad_left);
    auto p = Cached(d.Key('w'), [&] {
      auto pd = BackwardPd<dnnl::convolution_backward_weights>(d);
      return Prepared{dnnl::convolution_backward_weights(pd), pd.diff_weights_desc(),
                      pd.scratchpad_desc()};
    });
    memory user(d.UserWeights(), Engine(), dw->typed_data());
    const bool reorder = p->weights != user.get_desc();
    memory out = reorder ? memory(p->weights, Engine()) : user;
    Execute(*p, {{DNNL_ARG_SRC, memory(d.Src(), Engine(), x.typed_data())},
                 {DNNL_ARG_DIFF_DST, memory(d.Dst(), Engine(), g.typed_data())},
                 {DNNL_ARG_DIFF_WEIGHTS, out}});
    if (reorder) {
      dnnl::stream stream(Engine());
      dnnl::reorder(out, user).execute(stream, out, user);
      stream.wait();
    }
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
