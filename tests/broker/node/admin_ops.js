// admin_ops.js — one kafkajs 2.2.4 admin call for tests/broker (test_admin_configs.py).
//   node admin_ops.js <bootstrap> <op> '<json args>'
// Prints {"ok": result} or {"error": {name, message, type, partitions}} as one JSON
// line; ops: describeConfigs, alterConfigs, createPartitions, deleteTopicRecords,
// fetchTopicOffsets, fetchTopicMetadata (args are kafkajs' own, resource types
// given by name: "TOPIC" / "BROKER").
const { Kafka, ConfigResourceTypes, logLevel } = require('kafkajs')

// An error with its per-partition errors, and the one it wraps (kafkajs'
// retrier wraps the broker's answer in a KafkaJSNonRetriableError).
function describe (e) {
  if (!e) return null
  return {
    name: e.name,
    message: e.message,
    type: e.type,
    partitions: (e.partitions || []).map(p => ({
      partition: p.partition,
      type: p.error && p.error.type,
      message: p.error && p.error.message
    })),
    cause: e.cause && e.cause !== e ? describe(e.cause) : null
  }
}

async function main () {
  const [bootstrap, op, json] = process.argv.slice(2)
  const args = JSON.parse(json || '{}')
  for (const r of args.resources || []) {
    if (typeof r.type === 'string') r.type = ConfigResourceTypes[r.type]
  }
  const kafka = new Kafka({
    clientId: 'tierstore-test',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 }
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    // deleteTopicRecords looks partition leaders up in metadata it does not fetch itself.
    if (op === 'deleteTopicRecords') await admin.fetchTopicMetadata({ topics: [args.topic] })
    const res = await admin[op](args)
    console.log(JSON.stringify({ ok: res === undefined ? null : res }))
  } catch (e) {
    console.log(JSON.stringify({ error: describe(e) }))
  } finally {
    await admin.disconnect()
  }
}

main().catch(e => {
  console.log(JSON.stringify({ error: { name: e.name, message: e.message, type: e.type } }))
  process.exitCode = 1
})
