// A real OpenID provider for the console's single sign-on test: the npm
// package oidc-provider (installed by scripts/install-test-deps.sh), on
// loopback, with its development sign-in pages (any password) and the
// accounts and roles the test gives it. Prints "issuer <url>" once ready.
//
// Environment: OIDC_PROVIDER_MODULE (path to oidc-provider's lib/index.js),
// OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI, OIDC_ACCOUNTS (JSON:
// account id -> list of role values).
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.OIDC_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    if (!(id in accounts)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: `${id}@example.test`, email: `${id}@example.test`, roles: accounts[id] };
      },
    };
  },
  claims: { openid: ['sub'], profile: ['preferred_username', 'roles'], email: ['email'] },
  // Claims in the ID token, as Entra ID puts roles and groups there.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: ['a test key, not a secret'] },
  features: { devInteractions: { enabled: true } },
});

server.on('request', provider.callback());
console.log(`issuer ${issuer}`);
