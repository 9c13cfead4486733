import { IsIn, IsNotEmpty, IsOptional, IsString } from 'class-validator';

/** Environment of the embedded `pocketsphinx` engine (Debian packages `pocketsphinx`, `pocketsphinx-en-us`). */
export class PocketsphinxConfig {
  /** Set to `false` to leave the embedded engine out of the registry. */
  @IsIn(['true', 'false'])
  POCKETSPHINX_ENABLED = 'true';

  /** The `pocketsphinx_continuous` binary. */
  @IsString()
  @IsNotEmpty()
  POCKETSPHINX_PATH = 'pocketsphinx_continuous';

  /** Acoustic model directory (`-hmm`); unset = the package default (US English). */
  @IsOptional()
  @IsString()
  POCKETSPHINX_HMM?: string;

  /** Language model (`-lm`); unset = the package default. */
  @IsOptional()
  @IsString()
  POCKETSPHINX_LM?: string;

  /** Pronunciation dictionary (`-dict`); unset = the package default. */
  @IsOptional()
  @IsString()
  POCKETSPHINX_DICT?: string;

  /** Language code reported for results (the default model is US English). */
  @IsString()
  POCKETSPHINX_LANGUAGE = 'en-US';
}
