#!/usr/bin/env bash
# The wheels bench/gpu_session.sh installs on a lent GPU (Python 3.12 and torch there, no pymatgen, no
# network; SevenNet's own pure-Python deps e3nn and torch-geometric pinned as here), into the git-ignored .whl/, and the mirror files it reads into .mirror/: run here, where pip reaches
# the registries. Together with the checkout they must stay under the device's 64 MiB, so SevenNet's wheel is
# repacked with the one checkpoint this code loads (SevenNet-0 of 11 July 2024: 43 MB -> 11 MB) and CHGNet's is
# left out (its relaxations are cheap on a CPU; the GPU relaxes with SevenNet).
#
#   bash bench/gpu_wheels.sh            # from the repository root; then run bench/gpu_session.sh there
set -euo pipefail
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
rm -rf .whl && mkdir -p .whl .mirror
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || printf '/.whl/\n/.mirror/\n' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLAT[@]}" -d .whl \
  pymatgen==2026.10.24 pymatgen-core==2026.10.16 monty==2026.10.21 spglib==2.8.0 ase==3.29.0 orjson==3.13.0 \
  palettable==3.3.3 uncertainties==3.2.3 ruamel.yaml==0.19.1 wcwidth==0.9.4 plotly==7.1.0 \
  sevenn==0.13.0 braceexpand==0.1.7 matscipy==1.3.1 torch-geometric==2.8.1 e3nn==0.6.0 opt-einsum-fx==0.1.4 \
  opt_einsum==3.4.0
python3 - <<'PY'
import glob, os, zipfile
src = glob.glob(".whl/sevenn-*.whl")[0]
keep = "SevenNet_0__11Jul2024/"
drop = lambda name: "/pretrained_potentials/" in name and keep not in name and not name.endswith(".py")
tmp = src + ".tmp"
with zipfile.ZipFile(src) as zi, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zo:
    for item in zi.infolist():
        if drop(item.filename):
            continue
        data = zi.read(item.filename)
        if item.filename.endswith(".dist-info/RECORD"):
            data = "".join(l + "\n" for l in data.decode().splitlines() if not drop(l.split(",")[0])).encode()
        zo.writestr(item, data)
os.replace(tmp, src)
PY
MIRROR=${COMPENDIUM_MIRROR:-../shared/data}
cp "$MIRROR"/{README.md,mp_cgcnn_2020.jsonl.xz,mp_elastic_cgcnn_2020.jsonl.xz,mp_energy_2024.csv,mp-ids-46744.csv,mp_insertion_electrodes.csv} .mirror/
du -sh .whl .mirror
