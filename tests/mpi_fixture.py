"""mpi_fixture.py DIR N_TRAIN N_TEST - the IDX data of the MPI tests
(test_mpi.sh, test_mpi_eval.sh): 28x28 images of a bright disc at a random
place and radius, with noise, labels i % 4; DIR/train-img, train-lab,
test-img, test-lab. Smooth, varied images: periodic patterns put
pre-activations on ReLU kinks, where the rounding of a sum split in two
flips a unit and the runs part ways."""
import random
import struct
import sys

d = sys.argv[1]


def write(name, n, seed):
    r = random.Random(seed)
    with open(f"{d}/{name}-img", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        for i in range(n):
            cx, cy, rad = r.uniform(6, 22), r.uniform(6, 22), r.uniform(3, 8)
            f.write(bytes(max(0, min(255, int(255 * (1 - ((x - cx) ** 2 +
                                                          (y - cy) ** 2) /
                                                     rad ** 2)) +
                                     r.randint(0, 20)))
                          for y in range(28) for x in range(28)))
    with open(f"{d}/{name}-lab", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 4 for i in range(n)))


write("train", int(sys.argv[2]), 3)
write("test", int(sys.argv[3]), 5)
