// acl_ops.js — one kafkajs 2.2.4 ACL admin call for tests/broker (test_security_acl.py).
//   node acl_ops.js <bootstrap> <op> '<json args>' ['<json sasl>']
// ops: createAcls, describeAcls, deleteAcls (kafkajs' own arguments, with the
// enums given by name: resourceType "TOPIC", resourcePatternType "LITERAL",
// operation "READ", permissionType "ALLOW"). sasl: {mechanism, username,
// password} for a SASL_PLAINTEXT listener. Prints {"ok": result} (enums back
// as names) or {"error": {name, message, type}} as one JSON line.
const {
  Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes,
  ResourcePatternTypes
} = require('kafkajs')

const ENUMS = {
  resourceType: AclResourceTypes,
  resourcePatternType: ResourcePatternTypes,
  operation: AclOperationTypes,
  permissionType: AclPermissionTypes
}

function toCodes (o) {
  for (const [k, e] of Object.entries(ENUMS)) {
    if (typeof o[k] === 'string') o[k] = e[o[k]]
  }
  return o
}

function toNames (v) {
  if (Array.isArray(v)) return v.map(toNames)
  if (v && typeof v === 'object') {
    const out = {}
    for (const [k, x] of Object.entries(v)) {
      const e = ENUMS[k]
      const name = e && Object.keys(e).find(n => e[n] === x)
      out[k] = name || toNames(x)
    }
    return out
  }
  return v
}

async function main () {
  const [bootstrap, op, json, sasl] = process.argv.slice(2)
  const args = JSON.parse(json || '{}')
  for (const a of args.acl || []) toCodes(a)
  for (const f of args.filters || []) toCodes(f)
  if (op === 'describeAcls') toCodes(args)
  const kafka = new Kafka({
    clientId: 'tierstore-test',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 1 },
    sasl: sasl ? JSON.parse(sasl) : undefined
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const res = await admin[op](args)
    console.log(JSON.stringify({ ok: res === undefined ? null : toNames(res) }))
  } catch (e) {
    console.log(JSON.stringify({ error: { name: e.name, message: e.message, type: e.type } }))
  } finally {
    await admin.disconnect()
  }
}

main().catch(e => {
  console.log(JSON.stringify({ error: { name: e.name, message: e.message, type: e.type } }))
  process.exitCode = 1
})
