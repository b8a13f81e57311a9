"""Training throughput of candidate CNN layouts (batch 128; pass any argument for jit_compile=True)."""
import time, sys, tensorflow as tf, keras
from keras import layers
def cbr(x, f, bn=True):
    x = layers.Conv2D(f, 3, padding="same", use_bias=not bn)(x)
    if bn: x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)
def build(stages, stem="s2d", stem_f=32, bn=True):
    inp = keras.Input((48,48,1)); x = layers.Rescaling(1/255.)(inp)
    if stem == "s2d":
        x = layers.Lambda(lambda t: tf.nn.space_to_depth(t, 2))(x); x = cbr(x, stem_f, bn)
    elif stem == "conv48":
        x = cbr(x, stem_f, bn); x = layers.MaxPooling2D()(x)
    for i, st in enumerate(stages):
        for f in st: x = cbr(x, f, bn)
        if i < len(stages)-1: x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x); x = layers.Dropout(0.3)(x)
    return keras.Model(inp, layers.Dense(7, activation="softmax")(x))
def bench(name, m, bs=128, jit=False):
    x = tf.random.uniform((bs,48,48,1), 0, 255); y = tf.one_hot(tf.random.uniform((bs,),0,7,tf.int32), 7)
    m.compile(keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True, weight_decay=5e-4), "categorical_crossentropy", jit_compile=jit)
    m.train_on_batch(x, y); m.train_on_batch(x, y)
    t = time.perf_counter(); n=8
    for _ in range(n): m.train_on_batch(x, y)
    dt = (time.perf_counter()-t)/n
    print(f"{name:45s} params={m.count_params():8d} {bs/dt:6.0f} img/s  epoch~{28709/(bs/dt):5.0f}s", flush=True)
C = {
 "cur w16 (conv48 16; 32,32|64,64|128,128)": dict(stages=[[32,32],[64,64],[128,128]], stem="conv48", stem_f=16),
 "s2d32; 32,32|64,64|128,128": dict(stages=[[32,32],[64,64],[128,128]], stem_f=32),
 "s2d64; 64|128,128|256,256": dict(stages=[[64],[128,128],[256,256]], stem_f=64),
 "s2d64; 64,64|128,128|256,256": dict(stages=[[64,64],[128,128],[256,256]], stem_f=64),
 "s2d64; 64,64|128,128|256,256 noBN": dict(stages=[[64,64],[128,128],[256,256]], stem_f=64, bn=False),
 "s2d48; 96|192,192|384": dict(stages=[[96],[192,192],[384]], stem_f=48),
 "s2d32; 64|128,128|256,256|256": dict(stages=[[64],[128,128],[256,256],[256]], stem_f=32),
}


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jit", action="store_true", help="XLA-compile the training step")
    a = ap.parse_args(argv)
    for k, v in C.items():
        bench(k, build(**v), jit=a.jit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
