-- A headless Neovim as a user's would be: opens $CNNDSL_SPEC, starts `$CNNDSL_PYTHON -m cnndsl lsp` for it
-- (vim.lsp.start where Neovim has it, 0.8 and later; start_client + buf_attach_client on Debian 12's 0.7),
-- waits for the diagnostics, asks a hover at $CNNDSL_HOVER ("line,col", 0-based) and the inlay hints, and writes
-- what it got as JSON to $CNNDSL_OUT. tests/test_editors.py runs it.
local spec, python, out = os.getenv("CNNDSL_SPEC"), os.getenv("CNNDSL_PYTHON"), os.getenv("CNNDSL_OUT")
vim.cmd("edit " .. vim.fn.fnameescape(spec))
vim.bo.filetype = "cnn"
local config = { name = "cnndsl", cmd = { python, "-m", "cnndsl", "lsp" }, root_dir = vim.fn.fnamemodify(spec, ":p:h") }
if vim.lsp.start then
  vim.lsp.start(config)
else
  vim.lsp.buf_attach_client(0, vim.lsp.start_client(config))
end

local result = { diagnostics = {}, hover = vim.NIL, hints = {} }
vim.wait(30000, function() return #vim.diagnostic.get(0) > 0 end, 50)
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(result.diagnostics, { line = d.lnum, col = d.col, end_line = d.end_lnum, end_col = d.end_col,
                                     severity = d.severity, message = d.message })
end

local line, col = string.match(os.getenv("CNNDSL_HOVER") or "0,0", "(%d+),(%d+)")
local uri = vim.uri_from_bufnr(0)
local hover = vim.lsp.buf_request_sync(0, "textDocument/hover",
  { textDocument = { uri = uri }, position = { line = tonumber(line), character = tonumber(col) } }, 10000)
for _, answer in pairs(hover or {}) do
  if answer.result then result.hover = answer.result.contents.value end
end
local hints = vim.lsp.buf_request_sync(0, "textDocument/inlayHint", { textDocument = { uri = uri },
  range = { start = { line = 0, character = 0 }, ["end"] = { line = vim.api.nvim_buf_line_count(0), character = 0 } } },
  10000)
for _, answer in pairs(hints or {}) do
  for _, h in ipairs(answer.result or {}) do
    table.insert(result.hints, { line = h.position.line, label = h.label })
  end
end

local file = io.open(out, "w")
file:write(vim.fn.json_encode(result))
file:close()
vim.cmd("qa!")
