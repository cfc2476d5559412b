/**
 * The one place that loads @peculiar/x509. Its dependency injection container (tsyringe)
 * needs the reflect-metadata polyfill before the library is evaluated, so the polyfill import
 * must stay first. Everyone else imports `x509` from here, never from "@peculiar/x509".
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
