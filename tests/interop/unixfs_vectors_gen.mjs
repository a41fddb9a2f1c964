// Generates UnixFS reference vectors (kubo `ipfs add --cid-version=1` defaults).
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CarWriter } from '@ipld/car/writer'

const CHUNK = 262144
const MAXL = 174
const PREFIX = Buffer.from('anarq-unixfs-vector', 'ascii')

export function content (n) {
  const out = Buffer.alloc(n)
  const ctr = Buffer.alloc(8)
  let off = 0
  for (let i = 0n; off < n; i++) {
    ctr.writeBigUInt64BE(i)
    const d = createHash('sha256').update(PREFIX).update(ctr).digest()
    off += d.copy(out, off, 0, Math.min(32, n - off))
  }
  return new Uint8Array(out.buffer, out.byteOffset, n)
}

class RecordingBlockstore extends MemoryBlockstore {
  constructor () { super(); this.order = [] }
  put (key, val, options) {
    if (!(val instanceof Uint8Array)) throw new Error('expected Uint8Array block')
    this.order.push({ cid: key, bytes: val })
    return super.put(key, val, options)
  }
}

async function importBytes (bytes) {
  const bs = new RecordingBlockstore()
  const opts = {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: CHUNK }),
    layout: balanced({ maxChildrenPerNode: MAXL }),
    reduceSingleLeafToSelf: true,
    wrapWithDirectory: false,
    leafType: 'file',
    fieldOrder: 'links-first'
  }
  const results = []
  for await (const e of importer([{ content: bytes }], bs, opts)) results.push(e)
  if (results.length !== 1) throw new Error('expected exactly one import result')
  return { root: results[0].cid, order: bs.order }
}

async function carBytes (root, blocks) {
  const { writer, out } = CarWriter.create([root])
  const chunks = []
  const collect = (async () => { for await (const c of out) chunks.push(c) })()
  const seen = new Set()
  for (const b of blocks) {
    const k = b.cid.toString()
    if (seen.has(k)) continue
    seen.add(k)
    await writer.put({ cid: b.cid, bytes: b.bytes })
  }
  await writer.close()
  await collect
  return Buffer.concat(chunks)
}

const sizes = [0, 1, 1000, 262143, 262144, 262145, 524288, 1048577,
  174 * CHUNK, 174 * CHUNK + 1, 175 * CHUNK + 5, 348 * CHUNK + 1]
const withBlocks = new Set([262145, 174 * CHUNK + 1])
const withCar = new Set([1000, 262145])

const c1000 = content(1000)
console.log('sha256(content(1000)) node =', createHash('sha256').update(c1000).digest('hex'))
if (process.argv[2] === 'dump1000') { writeFileSync('/tmp/unixfs-vectors/c1000.bin', c1000); process.exit(0) }

const verOf = (name) => JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version
const pkgs = ['ipfs-unixfs-importer', 'ipfs-unixfs', '@ipld/dag-pb', 'blockstore-core', '@ipld/car', 'multiformats']
const generator = pkgs.map(p => `${p}@${verOf(p)}`).join(', ') + `; node ${process.version}`

const files = []
for (const n of sizes) {
  const t0 = Date.now()
  const { root, order } = await importBytes(content(n))
  const rec = { size: n, cid: root.toString() }
  if (withBlocks.has(n)) {
    rec.dag_pb_blocks = order.filter(b => b.cid.code === 0x70)
      .map(b => ({ cid: b.cid.toString(), hex: Buffer.from(b.bytes).toString('hex') }))
  }
  if (withCar.has(n)) rec.car_base64 = (await carBytes(root, order)).toString('base64')
  const nRaw = order.filter(b => b.cid.code === 0x55).length
  const nPb = order.filter(b => b.cid.code === 0x70).length
  console.log(`${n}\t${rec.cid}\traw=${nRaw} pb=${nPb}\t${Date.now() - t0}ms`)
  files.push(rec)
}

const doc = {
  chunk_bytes: CHUNK,
  max_links: MAXL,
  content: 'content(n) = first n bytes of SHA-256(b"anarq-unixfs-vector" || u64be(0)) || SHA-256(b"anarq-unixfs-vector" || u64be(1)) || ...',
  generator,
  files
}
writeFileSync(process.argv[2] || '/tmp/unixfs-vectors/unixfs_vectors.json', JSON.stringify(doc, null, 2) + '\n')
