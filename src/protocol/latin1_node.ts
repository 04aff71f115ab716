/**
 * Imported for its effect by the server and Deno's client: node's Buffer decodes ASCII into
 * strings fastest in Deno, so value.ts's readers use it instead of the portable view.
 */

import { Buffer } from "node:buffer";
import { useLatin1View } from "./value.ts";

useLatin1View((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
