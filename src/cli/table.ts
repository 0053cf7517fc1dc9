import Table from 'cli-table3'

/** A cli-table3 table; colour only on a terminal so logs and pipes stay plain. */
export function createTable(head: string[], colAligns?: Array<'left' | 'right' | 'center'>): Table.Table {
  const plain = !process.stdout.isTTY
  return new Table({head, colAligns, style: plain ? {head: [], border: []} : {}})
}
