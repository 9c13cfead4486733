import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/**
 * Table `contexts` (created by migrations/1763800000000-Contexts.ts): a named list of phrases for
 * word boosting (Riva SpeechContext). `phrase_boosts[i]` is the boost of `phrases[i]`, or NULL
 * when that phrase uses the context-wide `boost`; the two arrays always have the same length.
 */
@Entity({ name: 'contexts' })
export class ContextEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** 1–200 characters. */
  @Column({ type: 'varchar', length: 200 })
  name: string;

  /** Language the phrases are in (ISO-639-1 or BCP-47), or null when unspecified. */
  @Column({ type: 'varchar', length: 32, nullable: true })
  language: string | null;

  /** 1–1000 phrases of 1–200 characters each. */
  @Column({ type: 'text', array: true })
  phrases: string[];

  /** Per-phrase boost, aligned with `phrases`; null elements fall back to `boost`. */
  @Column({ name: 'phrase_boosts', type: 'real', array: true })
  phraseBoosts: (number | null)[];

  /** Context-wide boost for phrases without their own (-100..100). */
  @Column({ type: 'real' })
  boost: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
