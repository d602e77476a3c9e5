// The client's wiring without VS Code: `vscode` and `vscode-languageclient/node` are stand-ins that record what
// extension.js asks of them. Run with `node tests/extension.test.js`; tests/test_editors.py does.
const assert = require("assert");
const Module = require("module");

const made = [];
let settingsChanged;
const fakes = {
  vscode: {
    workspace: {
      getConfiguration: (section) => ({ get: (key) => (section === "cnndsl" && key === "python" ? "/opt/venv/bin/python" : undefined) }),
      onDidChangeConfiguration: (listener) => { settingsChanged = listener; return { dispose() {} }; },
    },
  },
  "vscode-languageclient/node": {
    LanguageClient: class {
      constructor(id, name, server, options) {
        Object.assign(this, { id, name, server, options, started: 0, stopped: 0 });
        made.push(this);
      }
      start() { this.started += 1; return Promise.resolve(); }
      stop() { this.stopped += 1; return Promise.resolve(); }
    },
  },
};
const load = Module._load;
Module._load = function (request, ...rest) {
  return request in fakes ? fakes[request] : load.call(this, request, ...rest);
};

(async () => {
  const extension = require("../extension.js");
  const context = { subscriptions: [] };
  await extension.activate(context);
  assert.strictEqual(made.length, 1);
  const [client] = made;
  assert.deepStrictEqual(client.server.run, { command: "/opt/venv/bin/python", args: ["-m", "cnndsl", "lsp"] });
  assert.deepStrictEqual(client.options.documentSelector.map((s) => s.language), ["cnn", "cnn"]);
  assert.strictEqual(client.started, 1);
  await settingsChanged({ affectsConfiguration: (key) => key === "cnndsl.python" });
  assert.strictEqual(client.stopped, 1);
  assert.strictEqual(made.length, 2);
  await extension.deactivate();
  assert.strictEqual(made[1].stopped, 1);
  console.log("extension wiring ok");
})().catch((e) => { console.error(e); process.exit(1); });
