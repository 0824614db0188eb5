// socket.io-client joining `/auth` without auth (refused: connect_error) and with it
// (accepted: the connect handler's `hello`), over every transport mode.
// Usage: node auth_client.mjs <base-url> <polling|websocket|upgrade>
import { args, connectError, connected, done, once, socket, watchdog } from "../sio/lib.mjs";

const { url, mode } = args();
watchdog(15000);
const refused = socket(url, mode, "/auth", { forceNew: true });
const error = await connectError(refused);
refused.close();
const accepted = socket(url, mode, "/auth", { forceNew: true, auth: { name: "ann" } });
const hello = once(accepted, "hello");
await connected(accepted);
const [name] = await hello;
accepted.close();
done({ error: { message: typeof error.message, data: error.data }, connected: true, hello: name, rawMessage: error.message });
