// Quick-start: index two entries in memory and search one of them.
//   cargo build --lib && (cd bindings/node && npm ci) && node examples/node/quickstart.js
'use strict';
const { IsccIndex } = require('../../bindings/node');

async function main() {
  const ix = new IsccIndex(null);
  const ids = ix.add([
    { iscc_code: 'ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY', title: 'first' },
    { units: ['ISCC:AAAYPXW445FTYNJ3', 'ISCC:EAARIWBKT3AIVI7O'], title: 'second' },
  ]);
  console.log('added:', ids);
  const m = await ix.searchAsync({ iscc_code: 'ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY' }, { count: 5 });
  for (const x of m.matches) console.log(x.iscc_id, x.score.toFixed(3), Object.keys(x.units));
  try {
    ix.add({ iscc_code: 'ISCC:NOT-VALID' });
  } catch (e) {
    console.log('rejected:', e.code, e.message);
  }
  await ix.closeAsync();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
