"""Re-record the optimised HLO of the small network in README.md (writes /tmp/opt.hlo)."""

from hwnas.graph.builders.keras import import_tf, torch_to_keras

tf = import_tf()  # torchvision first, then TensorFlow
from torch import nn  # noqa: E402

net = nn.Sequential(
    nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(), nn.Conv2d(8, 8, 3, 1, 1, groups=8),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
).eval()  # fmt: skip
km = torch_to_keras(net, [(1, 3, 16, 16)])
f = tf.function(lambda x: km(x, training=False), jit_compile=True)
x = tf.random.normal((1, 16, 16, 3))
f(x)
with open("/tmp/opt.hlo", "w") as fh:
    fh.write(f.experimental_get_compiler_ir(x)(stage="optimized_hlo"))
