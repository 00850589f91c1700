#!/usr/bin/env bash
# Install what swingml needs on Debian/Ubuntu: the C/C++ toolchain pieces
# for the LightGBM build (cmake >= 3.28, libclang for bindgen), MariaDB for
# the MySQL tests, the independent readers the tests check outputs with:
# pyarrow (Parquet), pandas (independent recomputations), Python's
# lightgbm (model files), moto's S3 server (the tests of the artifact store
# on S3, on loopback), aiosmtpd (a local SMTP server for the e-mail tests),
# and Chromium, which opens monitor's HTML report in the tests.
# As root it installs; otherwise it prints the commands to run.
set -euo pipefail

packages=(build-essential pkg-config libclang-dev mariadb-server mariadb-client python3-pip time bc chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

need_cmake=1
if command -v cmake >/dev/null 2>&1; then
  version=$(cmake --version | head -n1 | awk '{print $3}')
  if [ "$(printf '%s\n3.28\n' "$version" | sort -V | head -n1)" = "3.28" ]; then need_cmake=0; fi
fi
need_pyarrow=1
# moto >= 5.2 answers conditional puts (If-Match / If-None-Match) as S3 does.
python3 -c 'import pyarrow, pandas, lightgbm, boto3, moto.server, aiosmtpd; assert tuple(map(int, moto.__version__.split(".")[:2])) >= (5, 2)' >/dev/null 2>&1 && need_pyarrow=0

if [ "$(id -u)" -ne 0 ]; then
  if [ ${#missing[@]} -gt 0 ]; then echo "run: sudo apt-get install -y ${missing[*]}" >&2; fi
  if [ $need_cmake = 1 ] || [ $need_pyarrow = 1 ]; then echo "run: pip install 'cmake>=3.28,<4' pyarrow pandas lightgbm 'moto[server]>=5.2,<6' aiosmtpd" >&2; fi
  if [ ${#missing[@]} -gt 0 ] || [ $need_cmake = 1 ] || [ $need_pyarrow = 1 ]; then exit 1; fi
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
pip_args=()
[ $need_cmake = 1 ] && pip_args+=('cmake>=3.28,<4')
[ $need_pyarrow = 1 ] && pip_args+=('pyarrow' 'pandas' 'lightgbm' 'moto[server]>=5.2,<6' 'aiosmtpd')
if [ ${#pip_args[@]} -gt 0 ]; then
  python3 -m pip install -q --root-user-action=ignore "${pip_args[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${pip_args[@]}"
fi
echo "setup: system packages, cmake, pyarrow, lightgbm, moto and aiosmtpd are in place" >&2
