// Rebuild a compiled test contract, tests/fixtures/<dir>/<Name>.json, from <Name>.sol with
// solc-js (npm `solc`): `node build-fixture.mjs <dir> <Name> [--check]`.
// The compiled artifacts are committed next to their sources, so the tests never need
// solc; run this only after changing a source (cd tests/js && npm ci && npm run build-erc20
// or build-erc7579). With --check it writes nothing and fails unless the committed artifact
// is what the source compiles to (the anvil tests run this).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [fixture, name] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
if (!/^[a-z0-9]+$/.test(fixture || "") || !/^[A-Za-z0-9]+$/.test(name || "")) {
  console.error("usage: node build-fixture.mjs <fixture dir> <ContractName> [--check]");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const solc = require("solc");
const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", fixture);
const file = `${name}.sol`;
const source = readFileSync(join(dir, file), "utf8");
const input = {
  language: "Solidity",
  sources: { [file]: { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "shanghai",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const c = out.contracts[file][name];
const artifact = {
  contractName: name,
  source: file,
  compiler: `solc-js ${solc.version()}`,
  settings: { optimizer: input.settings.optimizer, evmVersion: input.settings.evmVersion },
  abi: c.abi,
  bytecode: "0x" + c.evm.bytecode.object,
};
const text = JSON.stringify(artifact, null, 2) + "\n";
const out_path = join(dir, `${name}.json`);
if (process.argv.includes("--check")) {
  if (readFileSync(out_path, "utf8") !== text) {
    console.error(`tests/fixtures/${fixture}/${name}.json is not what ${file} compiles to: run \`node build-fixture.mjs ${fixture} ${name}\` in tests/js`);
    process.exit(1);
  }
  console.log(`${name}.json matches ${file}`);
} else {
  writeFileSync(out_path, text);
  console.log(`wrote ${name}.json (${c.evm.bytecode.object.length / 2} bytes of bytecode, ${solc.version()})`);
}
