// admin.js — one kafkajs 2.2.4 admin call against a broker, for the Python
// broker tests (tests/broker/test_admin_groups.py): kafkajs is the admin
// client many Node operators use, and it asks for its own API versions.
//
//   node admin.js HOST:PORT OPERATION '<json arguments>'
//
// Prints one JSON line: the call's result (Buffers as hex), or
// {"error": name, "message": ..., "groups": [...]} when it threw (exit 2).
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const [, , broker, op, argJson] = process.argv;
const args = argJson ? JSON.parse(argJson) : {};

function replacer(key, value) {
  if (value && value.type === 'Buffer' && Array.isArray(value.data)) {
    return Buffer.from(value.data).toString('hex');
  }
  return value;
}

async function call(admin) {
  switch (op) {
    case 'listGroups': return admin.listGroups();
    case 'describeGroups': return admin.describeGroups(args.groups);
    case 'deleteGroups': return admin.deleteGroups(args.groups);
    case 'resetOffsets': await admin.resetOffsets(args); return { ok: true };
    case 'setOffsets': await admin.setOffsets(args); return { ok: true };
    case 'fetchOffsets': return admin.fetchOffsets(args);
    case 'fetchTopicOffsets': return admin.fetchTopicOffsets(args.topic);
    case 'describeCluster': return admin.describeCluster();
    default: throw new Error('unknown operation ' + op);
  }
}

async function main() {
  const kafka = new Kafka({
    clientId: 'tierstore-kafkajs',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 100 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out = await call(admin);
    process.stdout.write(JSON.stringify(out, replacer) + '\n');
  } finally {
    await admin.disconnect();
  }
}

main().catch((e) => {
  const groups = (e.groups || []).map((g) => ({
    groupId: g.groupId, errorCode: g.errorCode, error: g.error ? g.error.type : null,
  }));
  process.stdout.write(JSON.stringify({
    error: e.name, type: e.type || null, message: e.message, groups,
  }) + '\n');
  process.exit(2);
});
