// Bundles the dashboard's browser code with its npm dependencies (uPlot, Leaflet) into
// src/ortspuls/web/static/dist/. The output is never committed; the server runs this build on
// its first start when the folder is missing or older than these sources.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "src", "ortspuls", "web", "static", "dist");
// Build into a sibling folder first so a running server never sees half a build.
const tmpdir = `${outdir}.tmp-${process.pid}`;

const entries = ["overview", "detail", "map"];

rmSync(tmpdir, { recursive: true, force: true });
mkdirSync(tmpdir, { recursive: true });

await esbuild.build({
  entryPoints: Object.fromEntries(entries.map((name) => [name, join(here, "src", `${name}.js`)])),
  outdir: tmpdir,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "linked",
  loader: { ".png": "file", ".svg": "file" },
  assetNames: "[name]-[hash]",
  logLevel: "warning",
});

// The manifest maps each file to a short content hash; the server appends it to asset URLs so
// browsers may cache them for long without ever running an old bundle.
const manifest = { files: {} };
for (const name of readdirSync(tmpdir).sort()) {
  const digest = createHash("sha256").update(readFileSync(join(tmpdir, name))).digest("hex");
  manifest.files[name] = digest.slice(0, 12);
}
writeFileSync(join(tmpdir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");

rmSync(outdir, { recursive: true, force: true });
renameSync(tmpdir, outdir);
console.log(`ortspuls frontend: built ${Object.keys(manifest.files).length} files into ${outdir}`);
