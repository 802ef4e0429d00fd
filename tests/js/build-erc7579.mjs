// Rebuild tests/fixtures/erc7579/EcdsaValidator.json from EcdsaValidator.sol with solc-js (npm `solc`).
// The compiled artifact is committed next to its source, so the tests never need solc;
// run this only after changing the source:  cd tests/js && npm ci && npm run build-erc7579
// With --check it writes nothing and fails unless the committed artifact is what the
// source compiles to (the ERC-7579 anvil test runs this).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "erc7579");
const source = readFileSync(join(dir, "EcdsaValidator.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "EcdsaValidator.sol": { content: source } },
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
const c = out.contracts["EcdsaValidator.sol"].EcdsaValidator;
const artifact = {
  contractName: "EcdsaValidator",
  source: "EcdsaValidator.sol",
  compiler: `solc-js ${solc.version()}`,
  settings: { optimizer: input.settings.optimizer, evmVersion: input.settings.evmVersion },
  abi: c.abi,
  bytecode: "0x" + c.evm.bytecode.object,
};
const text = JSON.stringify(artifact, null, 2) + "\n";
const out_path = join(dir, "EcdsaValidator.json");
if (process.argv.includes("--check")) {
  if (readFileSync(out_path, "utf8") !== text) {
    console.error("tests/fixtures/erc7579/EcdsaValidator.json is not what EcdsaValidator.sol compiles to: run `npm run build-erc7579` in tests/js");
    process.exit(1);
  }
  console.log("EcdsaValidator.json matches EcdsaValidator.sol");
} else {
  writeFileSync(out_path, text);
  console.log(`wrote EcdsaValidator.json (${c.evm.bytecode.object.length / 2} bytes of bytecode, ${solc.version()})`);
}
