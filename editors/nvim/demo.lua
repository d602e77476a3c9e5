-- The Neovim set-up of docs/editors.md's screenshot (editors/nvim/screenshot.py), for Debian 12's Neovim 0.7:
-- the language server for .cnn files, and its inlay hints drawn as virtual text at the lines' ends (Neovim
-- draws inlay hints itself from 0.10: vim.lsp.inlay_hint.enable()).
vim.o.termguicolors = true
vim.o.number = true
vim.o.signcolumn = "yes"
vim.cmd("syntax on")
vim.cmd("highlight NormalFloat guibg=#263040 guifg=#e0e0e0")
vim.cmd("highlight FloatBorder guibg=#263040 guifg=#8090a0")
local python = os.getenv("CNNDSL_PYTHON") or "python3"
local ns = vim.api.nvim_create_namespace("cnndsl_hints")

local function hints(bufnr)
  local params = { textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = 0, character = 0 }, ["end"] = { line = vim.api.nvim_buf_line_count(bufnr), character = 0 } } }
  vim.lsp.buf_request(bufnr, "textDocument/inlayHint", params, function(err, result)
    if err or not result then return end
    vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
    for _, h in ipairs(result) do
      vim.api.nvim_buf_set_extmark(bufnr, ns, h.position.line, 0,
        { virt_text = { { h.label, "Comment" } }, virt_text_pos = "eol" })
    end
  end)
end

vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, { pattern = "*.cnn", callback = function(args)
  vim.bo[args.buf].filetype = "cnn"
  vim.bo[args.buf].commentstring = "# %s"
  local id = vim.lsp.start_client({ name = "cnndsl", cmd = { python, "-m", "cnndsl", "lsp" },
    root_dir = vim.fn.fnamemodify(args.file, ":p:h"),
    on_attach = function(_, bufnr)
      hints(bufnr)
      vim.api.nvim_create_autocmd({ "TextChanged", "InsertLeave" }, { buffer = bufnr, callback = function()
        vim.defer_fn(function() hints(bufnr) end, 300)
      end })
    end })
  vim.lsp.buf_attach_client(args.buf, id)
end })
