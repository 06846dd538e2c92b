// The board's own page: each part is a module with start(); api.js is how they talk to the board.
import { takeTokenFromAddress } from "./api.js";
import * as live from "./live.js";
import * as tryit from "./try.js";
import * as faces from "./faces.js";
import * as models from "./models.js";
import * as tokenbar from "./tokenbar.js";

takeTokenFromAddress();
// One part that fails to start must not take the others with it; the console still says why.
for (const part of [tokenbar, live, tryit, faces, models]) {
  try {
    part.start();
  } catch (e) {
    console.error("a part of the page did not start:", e);
  }
}
