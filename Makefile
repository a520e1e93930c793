# Two entry points (see README): `make chat` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: setup chat test lint browser index

setup: $(VENV)/.installed

# torch first, pinned to the CPU build on local disk; otherwise pip pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	-$(BIN)/nbstripout --install  # strip notebook outputs on commit (needs a git checkout)
	touch $@

index: setup
	$(BIN)/faqbot build --quiet

chat: setup
	$(BIN)/faqbot serve

# Debian's chromium for the real-browser tests (Playwright cannot download its own here).
# Noto CJK renders Japanese and Noto Color Emoji the 👍/👎 in the screenshots the tests save.
browser:
	@{ command -v chromium && test -d /usr/share/fonts/truetype/noto; } >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null; }

lint: setup
	$(BIN)/ruff check bot tests

test: setup browser
	$(BIN)/ruff check bot tests
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15
