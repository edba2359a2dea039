# Entry points for people and CI. Every target installs what it needs first (tools/bootstrap.sh).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_FORCE_COLOR := false
export PY_COLORS := 0
export NO_COLOR := 1
IMAGES := operativos-systemd:bookworm operativos-systemd:trixie
SCENARIO ?=
LOCAL_URL := https://localhost:8443/

.PHONY: help setup images demo demo-destroy test lint molecule

help:
	@echo "make demo          run the whole stack in a local systemd container and print its URL"
	@echo "make test          lint, then every molecule scenario"
	@echo "make lint          yamllint, ansible-lint (production profile), role variable docs and ruff"
	@echo "make molecule      the CI scenarios; SCENARIO=name runs one (for example SCENARIO=debian13)"
	@echo "make images        build the Debian 12 and 13 systemd images the scenarios use"
	@echo "make setup         install Docker Engine, debootstrap and the Python tools (.venv)"
	@echo "make demo-destroy  remove the local container"

setup:
	tools/bootstrap.sh

images: setup
	tools/build-base-image.sh bookworm
	tools/build-base-image.sh trixie

demo: setup
	tools/build-base-image.sh bookworm
	ansible-playbook playbooks/local-host.yml
	ansible-playbook site.yml
	@echo "operativos is up: $(LOCAL_URL) (a self-signed certificate: the browser asks once)"

demo-destroy:
	if docker container inspect operativos-local >/dev/null 2>&1; then docker rm --force operativos-local; fi

lint: setup
	yamllint --strict .
	ansible-lint
	python tools/check_role_docs.py
	ruff check .
	ruff format --check .

molecule: images
	tools/run-scenarios.sh $(SCENARIO)

test: lint molecule
