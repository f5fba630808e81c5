// The SDK client every e2e test uses, pointed at the jobline run.sh started
// (sdk-clients.md §1.1): host and credentials come from the environment.
'use strict';

const { gateway, MemoryStorageFactory } = require('@elasticpath/js-sdk');

function client() {
  for (const name of ['JOBLINE_HOST', 'EP_CLIENT_ID', 'EP_CLIENT_SECRET']) {
    if (!process.env[name]) throw new Error(`${name} is not set: run the tests through e2e/ep/run.sh`);
  }
  return gateway({
    client_id: process.env.EP_CLIENT_ID,
    client_secret: process.env.EP_CLIENT_SECRET,
    host: process.env.JOBLINE_HOST,
    protocol: 'http',
    storage: new MemoryStorageFactory(),
    disableCart: true,
  });
}

/** Calls `check` until it returns something other than undefined, for at most `ms`. */
async function poll(what, check, ms = 30000) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

module.exports = { client, poll };
