// The cnndsl client: starts `<cnndsl.python> -m cnndsl lsp` and talks to it over stdio.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function start() {
  const python = vscode.workspace.getConfiguration("cnndsl").get("python") || "python3";
  const server = { command: python, args: ["-m", "cnndsl", "lsp"] };
  client = new LanguageClient("cnndsl", "cnndsl", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "cnn" }, { scheme: "untitled", language: "cnn" }],
  });
  return client.start();
}

async function activate(context) {
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(async (event) => {
    if (event.affectsConfiguration("cnndsl.python") && client) {
      await client.stop();
      await start();
    }
  }));
  await start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
