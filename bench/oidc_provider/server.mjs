// panva's oidc-provider as bench/bench_idp.py runs it: client credentials, client_secret_basic,
// RFC 9068 access tokens (at+jwt) signed ES256 with a P-256 key made at start: the setup
// govgate's token endpoint has. No audit, the in-memory adapter (nothing stored for
// a JWT access token). Usage: node server.mjs PORT CLIENT_ID SECRET
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const [clientId, secret] = [process.argv[3], process.argv[4]];
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench' };
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{ client_id: clientId, client_secret: secret, grant_types: ['client_credentials'],
              response_types: [], redirect_uris: [], scope: 'proxy',
              token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256' }],
  jwks: { keys: [jwk] },
  scopes: ['proxy'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:govgate:bench',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'proxy', accessTokenFormat: 'jwt',
                                      accessTokenTTL: 300, jwt: { sign: { alg: 'ES256' } } }),
    },
  },
});
provider.listen(port, '127.0.0.1');
