// A Node socket.io server with @socket.io/redis-streams-adapter (no clients, no HTTP) runs the
// calls as server operations, so the test can read what the adapter writes for each. The
// calls come as one JSON line on stdin (see tests/emitter_redis_streams.rs); it prints
// "applied", then exits on the next line.
// Usage: node streams_calls.mjs <redis url> <stream name> <channel prefix>
import { createInterface } from 'node:readline';
import { Server } from 'socket.io';
import { createClient } from 'redis';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { toNode, apply } from './util.mjs';

const [redisUrl, streamName, channelPrefix] = process.argv.slice(2);
const client = createClient({ url: redisUrl });
await client.connect();
const io = new Server({ adapter: createAdapter(client, { streamName, channelPrefix }) });
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const calls = JSON.parse((await lines.next()).value);
for (const call of calls) apply(io, toNode(call));
console.log('applied');
await lines.next();
process.exit(0);
