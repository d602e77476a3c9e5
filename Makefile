# Two commands do all the set-up on a fresh machine:
#   make test   creates .venv, installs torch (CPU), the package, its dev tools and the example plugin (and, where missing,
#               Graphviz, a headless Chromium for the page tests and fonts for every script), runs the tests
#   make run    the main job: trains the Fashion-MNIST CNN of the tutorials on the offline digits
#               (it leaves report.html, and prints the `cnndsl show` commands that draw what it learned)
#   make check  checks every reference spec (the report of each, folded to top-level rows)
#   make vsix   builds the VS Code extension, editors/vscode/cnndsl.vsix (needs node and npm)

VENV  ?= .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0
# fonts for class names in Hangul, Chinese, Japanese (WenQuanYi Micro Hei) and emoji (Symbola, monochrome: matplotlib
# cannot draw colour emoji): 8 MB installed, 2.9 MB to download; Arabic is in matplotlib's own DejaVu Sans
FONTS := fonts-wqy-microhei fonts-symbola
# the oldest Lark pyproject.toml allows, installed beside the newest: tests/test_syntax.py parses with both
LARK_OLDEST := 1.1.0

.PHONY: test run check bench lint clean fonts editors vsix

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e '.[dev,train,export,tensorboard]'
	$(PIP) install -q --no-deps --no-build-isolation -e plugins/cnndsl-cbam  # the example plugin (tests/test_plugins.py)
	$(PIP) install -q --no-deps --target $(VENV)/lark-oldest "lark==$(LARK_OLDEST)" \
		|| echo "warning: could not install lark $(LARK_OLDEST); the test against the oldest Lark will skip"
	@command -v dot >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) \
		|| echo "warning: could not install graphviz (dot); diagrams will be unavailable"
	@command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium-headless-shell >/dev/null) \
		|| echo "warning: could not install chromium-headless-shell; the browser test of report.html will skip"
	touch $(STAMP)

# not in the stamp: a machine whose .venv is older than this step gets the fonts too (fc-list: 20 ms when present)
fonts:
	@fc-list -q "WenQuanYi Micro Hei" && fc-list -q Symbola \
		|| (apt-get update -qq && apt-get install -y -qq $(FONTS) >/dev/null) \
		|| echo "warning: could not install $(FONTS): class names in Hangul, Chinese, Japanese and emoji will be" \
			"empty boxes in the pictures (the tests that draw them skip)"

# not in the stamp either: Neovim for tests/test_editors.py's headless client, and the VS Code extension's npm
# packages (its grammar tests) where node is; without them those tests skip
editors:
	@command -v nvim >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq neovim >/dev/null) \
		|| echo "warning: could not install neovim; the headless Neovim test will skip"
	@if command -v npm >/dev/null 2>&1; then \
		[ editors/vscode/node_modules/.package-lock.json -nt editors/vscode/package-lock.json ] \
		|| (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error) \
		|| echo "warning: npm ci failed in editors/vscode; the grammar tests will skip"; \
	else echo "warning: node/npm not found; the VS Code extension's grammar tests will skip"; fi

vsix: editors
	cd editors/vscode && npx --no-install vsce package --out cnndsl.vsix

test: $(STAMP) fonts editors
	$(VENV)/bin/ruff check cnndsl tests bench plugins
	$(PY) -m pytest -q -n 2 --dist loadfile  # two workers, a test file each at a time (its module fixtures run once)

run: $(STAMP) fonts
	$(VENV)/bin/cnndsl train examples/fashion_cnn_honkong.cnn
	@run=$$(ls -td runs/fashion_cnn_honkong-* | head -1); \
	echo "the run as a page (open it in a browser): $$run/report.html"; \
	echo "what it learned (pictures into $$run):"; \
	echo "  $(VENV)/bin/cnndsl show filters $$run"; \
	echo "  $(VENV)/bin/cnndsl show maps $$run --index 0"; \
	echo "  $(VENV)/bin/cnndsl show cam $$run --index 0"

check: $(STAMP)
	@for f in specs/*.cnn examples/*.cnn; do $(VENV)/bin/cnndsl check $$f --depth 1 || exit 1; echo; done

bench: $(STAMP)
	$(PIP) install -q -e '.[bench]'
	$(PY) bench/check_speed.py

lint: $(STAMP)
	$(VENV)/bin/ruff check cnndsl tests bench plugins

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis editors/vscode/node_modules editors/vscode/cnndsl.vsix
