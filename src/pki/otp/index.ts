/** The public surface of src/pki/otp/: everything outside it imports from here. */
export { OTP_FILE } from "./otp-file.js";
export { AdminSecondFactor, type EnrolledAdmin, SECOND_FACTOR_ACTIONS, type SecondFactorAction, type SecondFactorPolicy } from "./second-factor.js";
export { base32, hotp, matchTotp, otpauthUri, totpStep } from "./totp.js";
