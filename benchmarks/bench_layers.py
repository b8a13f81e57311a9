"""Per-layer training throughput (forward + backward + SGD step, batch 128) on this CPU: why maskfer_cnn is wide at low resolution."""
import time, tensorflow as tf, keras
from keras import layers
def bench(name, shape, layer_fn, macs, bs=128, jit=False):
    x = tf.random.normal((bs,)+shape)
    inp = keras.Input(shape); m = keras.Model(inp, layer_fn(inp))
    opt = keras.optimizers.SGD(0.001)
    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as t:
            l = tf.reduce_mean(tf.square(m(x, training=True)))
        g = t.gradient(l, m.trainable_variables + [])
        opt.apply_gradients(zip(g, m.trainable_variables))
        return l
    step(x); step(x)
    n=20; t=time.perf_counter()
    for _ in range(n): step(x)
    dt=(time.perf_counter()-t)/n
    print(f"{name:40s} {dt*1000:7.1f} ms/batch  {bs/dt:7.0f} img/s  {3*2*macs*bs/dt/1e9:5.1f} GFLOP/s", flush=True)
def conv(f, s=1): return lambda x: layers.Conv2D(f,3,strides=s,padding="same",use_bias=False)(x)
def convbn(f): return lambda x: layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(f,3,padding="same",use_bias=False)(x)))
def main(argv=None) -> int:
    import argparse
    argparse.ArgumentParser(description=__doc__).parse_args(argv)  # no options: a bad one exits 2 in one line
    for jit in (False, True):
      print("jit", jit)
      bench("conv1->16 @48", (48,48,1), conv(16), 48*48*9*16, jit=jit)
      bench("conv16->32 @24", (24,24,16), conv(32), 24*24*9*16*32, jit=jit)
      bench("conv32->32 @24", (24,24,32), conv(32), 24*24*9*32*32, jit=jit)
      bench("convbn32->32 @24", (24,24,32), convbn(32), 24*24*9*32*32, jit=jit)
      bench("conv64->64 @12", (12,12,64), conv(64), 12*12*9*64*64, jit=jit)
      bench("conv128->128 @6", (6,6,128), conv(128), 6*6*9*128*128, jit=jit)
      bench("conv64->64 @24", (24,24,64), conv(64), 24*24*9*64*64, jit=jit)
      bench("conv128->128 @12", (12,12,128), conv(128), 12*12*9*128*128, jit=jit)
      bench("conv256->256 @6", (6,6,256), conv(256), 6*6*9*256*256, jit=jit)
      bench("conv32->32 @48", (48,48,32), conv(32), 48*48*9*32*32, jit=jit)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
