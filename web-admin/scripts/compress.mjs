// Writes a gzip copy beside each built text file in dist/ (index.html, scripts, styles), which
// the server sends to browsers that accept gzip: the UI is about a third the size on the wire.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

function compress(folder) {
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) compress(path);
    else if (/\.(html|js|css|svg|json)$/.test(name)) {
      writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: constants.Z_BEST_COMPRESSION }));
    }
  }
}

compress(new URL("../dist", import.meta.url).pathname);
