// Runs emitter calls with @socket.io/redis-emitter, then exits; the test captures what it
// publishes. The calls come as one JSON array on stdin (see tests/emitter_redis.rs), with
// binary written as {"$bin": [bytes]}.
// Usage: node calls.mjs <redis url> <key>
import { createClient } from 'redis';
import { Emitter } from '@socket.io/redis-emitter';
import { toNode, apply } from './util.mjs';

const [redisUrl, key] = process.argv.slice(2);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const calls = JSON.parse(input);
const client = createClient({ url: redisUrl });
await client.connect();
const emitter = new Emitter(client, { key });
for (const call of calls) apply(emitter, toNode(call));
await client.quit(); // after every queued PUBLISH
console.log('done');
