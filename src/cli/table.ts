import Table from 'cli-table3'

/** A cli-table3 table; colour only on a terminal so logs and pipes stay plain. */
export function createTable(head: string[], colAligns?: Array<'left' | 'right' | 'center'>): Table.Table {
  const plain = !process.stdout.isTTY
  // an explicit colAligns: undefined would replace cli-table3's default and break rendering
  return new Table({head, ...(colAligns ? {colAligns} : {}), style: plain ? {head: [], border: []} : {}})
}
